"""Context of each frame from dlib-68 landmarks: blinks, speech and head motion.

On real video a blink, a spoken syllable or a nod moves the face more than a micro-expression
does, so the spotter and the benchmarks need to know when each is happening. Every detector
here is causal and streaming (``ContextTracker.update`` per frame, by timestamp, so a clip
resampled from 25 to 12.5 or 200 fps gives nearly the same answers), works on plain (68, 2)
landmark arrays, and is normalised by the inter-ocular distance (IOD, between the eye centres)
so face size drops out.

- Blink. ``eye_aperture`` is the eye aspect ratio (EAR, (|p2-p6|+|p3-p5|)/(2|p1-p4|)) averaged
  over both eyes, lightly smoothed (dlib's lids jitter on small faces). A blink starts when it
  falls below ``blink_ratio`` times both its own maximum over the last ``blink_close_s`` (lids
  fall within ~100 ms; the slow narrowing of a smile fails this) and the person's open-eye
  level (a running quantile over ``open_window_s``). It lasts while the EAR stays below that
  fraction of the level it fell from, for at most ``blink_max_s``. A longer closure (a fast
  squint, a look down) is not a blink, but causally its end is not known yet: the per-frame
  ``blink`` flag holds for its first ``blink_max_s``, and ``eyes_closed`` for as long as it
  lasts. ``BlinkRuns`` decides blinks once the eyes are open again (the blink lines).
- Speech. ``mouth_aperture`` is the inner-lip opening (mean of |61-67|, |62-66|, |63-65|) in
  IOD. Talking opens and closes the mouth at 2-8 Hz; a smile opens it once and holds. So a
  zigzag with hysteresis ``speech_swing_iod`` counts swings (a move of at least that much
  since the last turn); ``speaking`` starts when ``speech_swings`` swings fall within
  ``speech_window_s`` and holds while the last swing is under ``speech_hold_s`` old. Counting
  swings, not summing frame-to-frame changes, keeps the measure independent of the frame rate
  and of landmark jitter below the hysteresis. Rapid grimaces look the same (lp_d6).
- Head. ``head_speed`` is in px/s at 90 px IOD, measured against the frame ``head_baseline_s``
  ago (a 100 ms baseline, not the previous frame: jitter / dt would grow with the frame rate):
  the RMS displacement of the stable points (eye corners, nose ridge) explained by a
  similarity fit (translation, rotation, scale), plus the nose tip's move relative to the eye
  corners after that fit (yaw and pitch turn the nose, which a 2D similarity cannot explain).
  ``head_moving`` is ``head_speed > head_moving_px_s``.

A frame without a face (``valid`` false) is a gap: every detector starts over, as after
``reset()``. So does a timestamp that does not advance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np

IOD_REF_PX = 90.0  # speeds are reported as if the eye centres were this far apart
STABLE_POINTS = np.array([36, 39, 42, 45, 27, 28, 29, 30])  # as stream.face.rois.STABLE_POINTS
NOSE_TIP = 7  # landmark 30's place in STABLE_POINTS; places 0-3 are the eye corners
# Point pairs whose distances the detectors read: eye lids (4: 37-41, 38-40, 43-47, 44-46),
# eye widths (2: 36-39, 42-45), inner lips (3). One gather and one norm instead of nine.
PAIRS_A = np.array([37, 38, 43, 44, 36, 42, 61, 62, 63])
PAIRS_B = np.array([41, 40, 47, 46, 39, 45, 67, 66, 65])


@dataclass(frozen=True)
class ContextConfig:
    """Every threshold of the context detectors (see the module docstring for each measure).

    Chosen on the landmarks of the 13 fixture videos and the 42 corpus clips. Speaking: 56-94 %
    of the frames of talking heads (st_*, vr_*; GRID 36-76 %, with ~1 s of silence per 3 s),
    0-5 % of faces that do not talk (lp_d0, lp_d3, lp_d5, lp_d9). Head speed, median: 19-29
    px/s on still faces (lp_d0, lp_d5, GRID; jitter), 30-120 on talking heads.
    """

    smooth_s: float = 0.03  # EMA time constant of EAR and mouth aperture (landmark jitter)
    open_window_s: float = 3.0  # the trailing stretch the open-eye level is taken over
    open_quantile: float = 0.8  # eyes are open most of the time; blinks and squints sit below
    open_refresh_s: float = 0.2  # how often that quantile is recomputed (cost, not accuracy)
    blink_ratio: float = 0.7  # closed: EAR below this fraction of the level it fell from
    blink_close_s: float = 0.2  # a blink's lid falls within this long
    blink_max_s: float = 0.4  # longer closures are not blinks (blinks last 100-400 ms)
    # Blink lines (engines.blink_runs), decided once the eyes reopen: a closure that reopens
    # within this long is a blink (the hand labels' definition, benchmarks/labels/); the flag
    # above must decide at once, so it keeps the shorter, surer limit.
    blink_line_max_s: float = 0.6
    blink_rejoin_s: float = 0.1  # a closure this soon after a reopening is the same blink
    speech_swing_iod: float = 0.06  # mouth move (IOD) that counts as one opening or closing
    speech_swings: int = 3  # swings within speech_window_s that start speech (1.5 cycles)
    speech_window_s: float = 1.0
    speech_hold_s: float = 0.6  # speech goes on while the last swing is at most this old
    head_baseline_s: float = 0.1  # head speed is measured over this span
    head_moving_px_s: float = 50.0  # px/s at 90 px IOD above which the head is moving
    capacity: int = 1024  # history frames kept: open_window_s at up to ~340 fps


@dataclass
class FrameContext:
    """What ``ContextTracker.update`` says about one frame."""

    eye_aperture: float  # mean EAR of both eyes (smoothed); nan if not valid
    blink: bool  # the eyes are closing or closed in a blink now (a closure's first 0.4 s)
    mouth_aperture: float  # inner-lip opening in IOD (smoothed); nan if not valid
    speaking: bool  # the mouth moves with the rhythm of speech (within the last ~0.6-1 s)
    head_speed: float  # px/s at 90 px IOD over ~head_baseline_s; nan in the first 50 ms
    head_moving: bool  # head_speed above head_moving_px_s
    eyes_closed: bool = False  # in a closure that began with a fast fall, however long


NO_FACE = (np.nan, False, np.nan, False, np.nan, False, False)  # FrameContext fields, no face


def face_measures(landmarks_px: np.ndarray) -> tuple[float, float, float, np.ndarray] | None:
    """(EAR, mouth aperture in IOD, IOD in px, stable points (8,) complex x + iy) of one face;
    None for NaN or collapsed landmarks."""
    lm = np.asarray(landmarks_px, np.float64)  # (68, 2)
    gaps = lm[PAIRS_A] - lm[PAIRS_B]  # (9, 2)
    d = np.sqrt((gaps * gaps).sum(1)).tolist()  # 9 floats: plain Python arithmetic from here
    dx, dy = ((lm[42:48].sum(0) - lm[36:42].sum(0)) / 6).tolist()  # right - left eye centre
    iod = math.hypot(dx, dy)
    if not (iod > 0 and d[4] > 0 and d[5] > 0):  # also False for NaN
        return None
    ear = ((d[0] + d[1]) / d[4] + (d[2] + d[3]) / d[5]) / 4  # mean of two (v1 + v2) / (2 h)
    mouth = (d[6] + d[7] + d[8]) / (3 * iod)
    stable = lm[STABLE_POINTS]  # (8, 2)
    if not (math.isfinite(ear + mouth) and np.isfinite(stable).all()):
        return None
    return ear, mouth, iod, stable[:, 0] + 1j * stable[:, 1]


class ContextTracker:
    """Landmarks (68, 2) → ``FrameContext``, one face, frame by frame, causal.

    History layout: each ring array holds every sample twice (at slot ``h`` and
    ``h + capacity``), so the newest ``n`` samples are always one contiguous slice ending at
    ``h + capacity``: windows are views, never copies.

    Example:
        >>> tracker = ContextTracker()
        >>> ctx = tracker.update(landmarks_px, t_s=0.04, valid=True)  # doctest: +SKIP
        >>> ctx.blink, ctx.speaking, ctx.head_speed  # doctest: +SKIP
    """

    def __init__(self, config: ContextConfig | None = None) -> None:
        self.config = cfg = config or ContextConfig()
        cap = cfg.capacity
        self._t = np.zeros(2 * cap)  # (2C,) timestamps, s
        self._ear = np.zeros(2 * cap)  # (2C,) smoothed EAR
        self._stable = np.zeros((2 * cap, len(STABLE_POINTS)), np.complex128)  # (2C, 8)
        self.reset()

    def reset(self) -> None:
        """Forget all history (a gap): every detector starts over."""
        self._count = 0  # samples written since the reset
        self._last_t = -math.inf
        self._ear_s = self._mouth_s = math.nan  # EMA states
        self._open_level, self._open_at = math.nan, -math.inf
        self._blink_ref = math.nan  # the EAR the current closure fell from; nan: eyes open
        self._blink_since = 0.0
        self._swing_dir = 0  # +1: the last swing opened the mouth, -1: closed it, 0: none yet
        self._swing_hi = self._swing_lo = math.nan  # extremes since the last swing
        self._swing_times = [-math.inf] * self.config.speech_swings  # ring of the last K swings
        self._swing_count = 0
        self._talking = False

    def update(self, landmarks_px: np.ndarray | None, t_s: float, valid: bool) -> FrameContext:
        """This frame's context.

        Args:
            landmarks_px: (68, 2) dlib landmarks in any pixel space; ignored unless ``valid``.
            t_s: the frame's time in seconds (media or monotonic; only differences matter).
            valid: a face was found. A frame without one (or with NaN landmarks), or a
                timestamp that does not advance, resets every detector.
        """
        face = face_measures(landmarks_px) if valid and landmarks_px is not None else None
        if face is None or t_s <= self._last_t:
            self.reset()
        if face is None:
            return FrameContext(*NO_FACE)
        ear, mouth, iod, stable = face
        if self._count == 0:
            self._ear_s, self._mouth_s = ear, mouth
        else:  # by timestamp, so the smoothing spans the same time at any frame rate
            alpha = 1.0 - math.exp((self._last_t - t_s) / self.config.smooth_s)
            self._ear_s += alpha * (ear - self._ear_s)
            self._mouth_s += alpha * (mouth - self._mouth_s)
        self._push(t_s, self._ear_s, stable)
        speed = self._head_speed(t_s, iod)
        blink = self._blink(t_s)  # before eyes_closed: it opens or ends the closure
        return FrameContext(
            eye_aperture=self._ear_s,
            blink=blink,
            mouth_aperture=self._mouth_s,
            speaking=self._speaking(t_s),
            head_speed=speed,
            head_moving=speed > self.config.head_moving_px_s,
            eyes_closed=not math.isnan(self._blink_ref),
        )

    # ---- history ------------------------------------------------------------------------------

    def _push(self, t_s: float, ear: float, stable: np.ndarray) -> None:
        cap = self.config.capacity
        h = self._count % cap
        for i in (h, h + cap):
            self._t[i], self._ear[i], self._stable[i] = t_s, ear, stable
        self._count += 1
        self._last_t = t_s

    def _window(self, span_s: float, t_s: float) -> slice:
        """Ring rows with t ≥ t_s - span_s, oldest first, the newest (this frame) last."""
        cap = self.config.capacity
        end = (self._count - 1) % cap + cap + 1
        start = end - min(self._count, cap)
        return slice(start + int(np.searchsorted(self._t[start:end], t_s - span_s)), end)

    # ---- detectors ----------------------------------------------------------------------------

    def _blink(self, t_s: float) -> bool:
        cfg, ear = self.config, self._ear_s
        # The open-eye level moves slowly: a quantile per frame at 200 fps would cost more
        # than everything else here together.
        # On a grid of media time: a stream started later refreshes on the same frames.
        every = cfg.open_refresh_s
        if math.isinf(self._open_at) or t_s // every > self._open_at // every:
            window = self._ear[self._window(cfg.open_window_s, t_s)]  # (n,)
            self._open_level = float(np.quantile(window, cfg.open_quantile))
            self._open_at = t_s
        if math.isnan(self._blink_ref):
            recent = self._ear[self._window(cfg.blink_close_s, t_s)]  # (n,) this frame last
            if len(recent) < 2:
                return False
            ref = float(recent[:-1].max())
            # A fast fall (from its level of 200 ms ago) that also ends well below the
            # person's open eyes: a smile's slow squint and jitter on open eyes both fail.
            if ear < cfg.blink_ratio * min(ref, self._open_level):
                self._blink_ref, self._blink_since = ref, t_s
        elif ear >= cfg.blink_ratio * self._blink_ref:
            self._blink_ref = math.nan  # reopened
        return not math.isnan(self._blink_ref) and t_s - self._blink_since <= cfg.blink_max_s

    def _speaking(self, t_s: float) -> bool:
        cfg, m = self.config, self._mouth_s
        if math.isnan(self._swing_hi):  # first frame: no swing yet, both extremes here
            self._swing_hi = self._swing_lo = m
        swing = 0
        if self._swing_dir >= 0:  # after an opening (or at the start): watch for a closing
            self._swing_hi = max(self._swing_hi, m)
            if m <= self._swing_hi - cfg.speech_swing_iod:
                swing = -1
        if self._swing_dir <= 0 and not swing:  # after a closing: watch for an opening
            self._swing_lo = min(self._swing_lo, m)
            if m >= self._swing_lo + cfg.speech_swing_iod:
                swing = +1
        k = cfg.speech_swings
        if swing:
            self._swing_dir = swing
            self._swing_hi = self._swing_lo = m
            self._swing_times[self._swing_count % k] = t_s
            self._swing_count += 1
        # Start on K swings within the window (the ring's oldest sits in the slot after the
        # newest); go on while the mouth keeps swinging, so pauses between words hold.
        if t_s - self._swing_times[self._swing_count % k] <= cfg.speech_window_s:
            self._talking = True
        elif t_s - self._swing_times[(self._swing_count - 1) % k] > cfg.speech_hold_s:
            self._talking = False
        return self._talking

    def _head_speed(self, t_s: float, iod: float) -> float:
        cfg = self.config
        # The earlier frame closest to head_baseline_s ago (at 12 fps: 83 ms); none if that
        # is under half of it (just after a start: jitter over 5 ms is no speed) or over
        # twice it (a hole in the timestamps).
        rows = self._window(2 * cfg.head_baseline_s, t_s)
        ages = t_s - self._t[rows][:-1]  # (n,)
        if len(ages) == 0 or ages[0] < cfg.head_baseline_s / 2:
            return math.nan
        k = int(np.abs(ages - cfg.head_baseline_s).argmin())
        ref, cur = self._stable[rows.start + k], self._stable[rows.stop - 1]  # (8,), (8,)
        ref_mean, cur_mean = ref.sum() / 8, cur.sum() / 8
        ref_c, cur_c = ref - ref_mean, cur - cur_mean  # (8,), (8,)
        a = complex(np.vdot(ref_c, cur_c) / np.vdot(ref_c, ref_c))  # scale·e^{iθ}, ref → cur
        explained = (a - 1) * ref_c + (cur_mean - ref_mean)  # (8,) the fit's move of each point
        rigid = math.sqrt(np.vdot(explained, explained).real / 8)
        # The nose tip against the eye corners, once the fit's rotation and scale are undone.
        nose_ref = complex(ref[NOSE_TIP] - ref[:4].sum() / 4)
        nose_cur = complex(cur[NOSE_TIP] - cur[:4].sum() / 4)
        turn = abs(nose_cur - a * nose_ref)
        return (rigid + turn) / float(ages[k]) * IOD_REF_PX / iod


@dataclass
class ClipContext:
    """``FrameContext`` fields over a clip, (L,) each."""

    eye_aperture: np.ndarray  # (L,) float32
    blink: np.ndarray  # (L,) bool
    mouth_aperture: np.ndarray  # (L,) float32
    speaking: np.ndarray  # (L,) bool
    head_speed: np.ndarray  # (L,) float32
    head_moving: np.ndarray  # (L,) bool
    eyes_closed: np.ndarray  # (L,) bool


def clip_context(
    landmarks_px: np.ndarray,
    t_s: np.ndarray,
    valid: np.ndarray,
    config: ContextConfig | None = None,
) -> ClipContext:
    """A whole clip through one ``ContextTracker``, frame by frame as live.

    Args:
        landmarks_px: (L, 68, 2) float, NaN rows where there is no face.
        t_s: (L,) media time in seconds.
        valid: (L,) bool, a face in the frame.
    """
    tracker = ContextTracker(config)
    frames = [
        tracker.update(landmarks_px[i], float(t_s[i]), bool(valid[i]))
        for i in range(len(landmarks_px))
    ]
    columns = {}
    for field in fields(FrameContext):
        values = [getattr(f, field.name) for f in frames]
        dtype = bool if field.type in ("bool", bool) else np.float32
        columns[field.name] = np.array(values, dtype)  # (L,)
    return ClipContext(**columns)


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Inclusive (start, end) index runs of True in a (L,) bool mask."""
    padded = np.concatenate([[False], np.asarray(mask, bool), [False]])  # (L + 2,)
    edges = np.flatnonzero(padded[1:] != padded[:-1])  # starts, then ends + 1, alternating
    return [(int(s), int(e) - 1) for s, e in zip(edges[::2], edges[1::2], strict=True)]
