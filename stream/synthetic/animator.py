"""Synthetic faces: a real photo animated by thin-plate-spline warps, with exact ground truth.

This is mexlive's built-in camera and its training data. A real face photo (scikit-image's
astronaut unless told otherwise) is framed so that its face box is ``face_height_px`` tall; its
dlib 68 landmarks are found once and become the control points of a thin-plate spline (TPS).

Multi-sequence driven generation (after Chen et al., ICASSP 2025, "multi-sequence driven face
generation with a TPS motion model"): the driving signal of each frame is FUSED from independent
driving sequences, each of which yields landmark displacements that are summed into one driven
landmark set q:

    expression sequence   micro- and macro-expressions, FACS action-unit mixes (synthetic_au.py)
    blink sequence        AU45, lids meet
    head-motion sequence  slow sinusoidal drift (a few px, < 2 deg) + rare small jerks

    q = head(p + expression + blink)          p: rest landmarks (68) in the output frame

The frame is a *backward* warp (``synthetic_tps.TpsWarper``): a TPS f with f(q_i) = p_i on the
68 driven landmarks plus 16 anchors at 1.7x the face box that never move (the background stays
still), evaluated on a coarse grid over the face region, upsampled and fed to ``cv2.remap``.
The TPS interpolates its control points, so the photo pixel at p_i appears at q_i:
``landmarks_at`` is the truth up to the grid interpolation error (< 0.1 px, tested). Lighting
drift and sensor noise come last.

Everything is a pure function of (seed, frame index): events are scheduled lazily in 30 s
blocks, each from ``np.random.default_rng((seed, block, k))``; noise is a window into a
pre-drawn noise bank at an offset drawn per frame. ``render(i)`` gives the same pixels in any
order, so the source is endless and random-access.

Example:
    animator = FaceAnimator(SyntheticConfig(seed=7))
    frame = animator.render(120)                      # BGR uint8 (480, 640, 3)
    truth = animator.events_between(0, 30 * 60)       # the first minute's events
    write_synthetic_set("data/", count=10, seconds=30, fps=30.0)
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from stream.errors import MexliveError
from stream.synthetic.au import (
    BLINK_AU,
    EMOTIONS,
    check_lead,
    combo_pattern,
    face_roll,
    lead_push,
    make_warpable,
    split_lead,
)
from stream.synthetic.tps import TpsWarper, frame_photo, photo_landmarks
from stream.synthetic.writers import (
    read_truth_csv,
    write_synthetic_set,
    write_truth_csv,
    write_video,
)

__all__ = [
    "FaceAnimator",
    "SyntheticConfig",
    "TruthEvent",
    "read_truth_csv",
    "write_synthetic_set",
    "write_truth_csv",
    "write_video",
]

BLOCK_S = 30.0  # schedule block length: events never straddle a block edge
FACE_CENTRE_Y = 0.45  # face box centre, as a fraction of the frame height (a bit above middle)
MICRO_S, MACRO_S, BLINK_S = (0.2, 0.5), (0.5, 4.0), (0.1, 0.4)  # onset -> offset
MICRO_PX, MACRO_PX = (1.0, 4.0), (6.0, 15.0)  # peak landmark displacement
EXPRESSION_GAP_S = 0.5  # quiet time between expression events
BLINK_MARGIN_S = 0.2  # blinks keep this far from expressions and from each other
JERKS_PER_MIN = 1.5


@dataclass
class SyntheticConfig:
    """What the synthetic camera shows. Rates are events per minute."""

    width: int = 640
    height: int = 480
    fps: float = 30.0
    seed: int = 0
    photo: str | None = None  # None -> skimage astronaut
    face_height_px: float = 200.0  # face box height in the output frame
    micro_per_min: float = 6.0
    macro_per_min: float = 2.0
    blinks_per_min: float = 12.0
    head_motion: bool = True  # slow drift + occasional small jerks
    noise_sigma: float = 2.0  # sensor noise, grey levels
    light_drift: bool = True  # slow global gain/offset change
    lead_in_s: float = 2.0  # quiet neutral stretch at the start (for baselines)
    # A driving region (a stream/face/rois.py name): its landmarks move up at each expression's
    # onset and the rest of the expression follows ``lead_frames`` later (synthetic_au.py).
    lead_region: str | None = None
    lead_frames: int = 4

    def __post_init__(self) -> None:
        # A person sets these from the command line: say what is wrong, no traceback.
        if self.fps < 10:
            raise MexliveError(
                f"synthetic fps must be >= 10 to show a 200 ms micro-expression: {self.fps}"
            )
        if self.width < 64 or self.height < 64 or self.face_height_px < 32:
            raise MexliveError("synthetic frames must be at least 64x64 px and faces 32 px tall")
        if self.seed < 0:
            raise MexliveError(f"synthetic seed must be >= 0: {self.seed}")
        if self.lead_region is not None:
            check_lead(self.lead_region, self.lead_frames, self.fps, EXPRESSION_GAP_S)


@dataclass(frozen=True)
class TruthEvent:
    """One ground-truth event (a row of the truth CSV). Frame indices 0-based, inclusive."""

    onset: int
    apex: int
    offset: int
    kind: str  # "micro" | "macro" | "blink"
    emotion: str  # "negative" | "positive" | "surprise" | "" for blinks
    aus: tuple[int, ...]  # FACS action units, e.g. (6, 12)
    peak_px: float  # largest landmark displacement at the apex, output pixels
    landmarks: tuple[int, ...]  # dlib indices (0-based) moved >= 0.5 px at the apex


@dataclass
class _Sequence:
    """Non-overlapping raised-cosine pulses of one driving sequence inside one block."""

    onset: np.ndarray  # (K,) int
    apex: np.ndarray  # (K,) int
    offset: np.ndarray  # (K,) int
    pattern: np.ndarray  # (K, ...) displacement at the apex
    events: list[TruthEvent]

    def at(self, index: int) -> tuple[int, float]:
        """(pulse k, weight in [0, 1]) active at frame ``index``; (-1, 0) when none."""
        k = int(np.searchsorted(self.onset, index, side="right")) - 1
        if k < 0 or index > self.offset[k]:
            return -1, 0.0
        return k, raised_cosine(index, int(self.onset[k]), int(self.apex[k]), int(self.offset[k]))


@dataclass
class _Block:
    expressions: _Sequence
    blinks: _Sequence
    jerks: _Sequence  # pattern (K, 3): tx px, ty px, angle rad
    noise_offsets: np.ndarray  # (block_frames,) int, start of each frame's noise window


def raised_cosine(index: int, onset: int, apex: int, offset: int) -> float:
    """0 at onset and offset, 1 at apex, smooth (half a cosine) on either side."""
    if index <= apex:
        return 0.5 * (1.0 - math.cos(math.pi * (index - onset) / (apex - onset)))
    return 0.5 * (1.0 + math.cos(math.pi * (index - apex) / (offset - apex)))


def duration_frames(seconds: tuple[float, float], fps: float) -> tuple[int, int]:
    """Range (lo, hi) of durations n = offset - onset, frames, for a range in seconds.

    n / fps and (n + 1) / fps both lie inside the range, whichever way a reader counts the
    inclusive offset frame.
    """
    lo = max(2, math.ceil(seconds[0] * fps - 1e-6))
    return lo, max(lo, math.floor(seconds[1] * fps + 1e-6) - 1)


def apex_step(n: int, rng: np.random.Generator) -> int:
    """Frames from onset to apex of an n-frame event: the apex lies at 30-50 % of it."""
    k_lo = max(1, math.ceil(0.3 * n - 1e-9))
    k_hi = max(k_lo, min(n - 1, math.floor(0.5 * n + 1e-9)))
    return int(rng.integers(k_lo, k_hi + 1))


class FaceAnimator:
    """Endless, random-access renderer of one animated face with its ground truth.

    Args:
        config: what to show; see ``SyntheticConfig``.
    """

    def __init__(self, config: SyntheticConfig) -> None:
        self.config = cfg = config
        photo_rgb, name = _load_photo(cfg.photo)
        box, landmarks = photo_landmarks(photo_rgb, name)
        target = (cfg.width / 2.0, cfg.height * FACE_CENTRE_Y)
        neutral_rgb, base = frame_photo(
            photo_rgb, box, landmarks, (cfg.width, cfg.height), cfg.face_height_px, target
        )
        self._neutral = np.ascontiguousarray(neutral_rgb[..., ::-1])  # (H, W, 3) BGR
        self._base = base  # (68, 2) float64
        self.base_landmarks_px = base.astype(np.float32)  # (68, 2)
        self._centre = np.asarray(target, np.float64)  # (2,) head rotation centre
        self._roll = face_roll(base)
        self._warper = TpsWarper(base, self._centre, cfg.face_height_px, (cfg.width, cfg.height))
        self.anchors_px = self._warper.anchors_px  # (16, 2) the TPS's fixed ring
        self._blink = self._warper.eyelids.pattern  # (68, 2) lids at full closure
        self._lead = lead_push(cfg.lead_region, self._roll)  # (68, 2) unit push, or None

        fps = cfg.fps
        self._block_frames = round(BLOCK_S * fps)
        self._lead_in = math.ceil(cfg.lead_in_s * fps - 1e-6)
        self._blocks: dict[int, _Block] = {}
        # Drift and light: a few slow sinusoids per channel with per-seed phases and periods.
        rng = np.random.default_rng((cfg.seed, 0x5EED))
        self._drift_f = rng.uniform(0.03, 0.12, (3, 2)) / fps  # cycles per frame
        self._drift_phase = rng.uniform(0, 2 * np.pi, (3, 2))
        self._drift_amp = np.array([[1.6, 0.9], [1.0, 0.5], [np.radians(0.8), np.radians(0.4)]])
        self._light_phase = rng.uniform(0, 2 * np.pi, 3)

        frame_size = cfg.height * cfg.width * 3
        self._noise_span = 1 << 16  # distinct windows: consecutive frames never share noise
        self._noise = None
        if cfg.noise_sigma > 0:
            bank = np.random.default_rng((cfg.seed, 0x4015E)).standard_normal(
                frame_size + self._noise_span, dtype=np.float32
            )
            self._noise = bank * np.float32(cfg.noise_sigma)  # (H*W*3 + span,)
        self._post = cfg.noise_sigma > 0 or cfg.light_drift
        self._warped = np.empty((cfg.height, cfg.width, 3), np.uint8)  # (H, W, 3) before post

    # ---- driving sequences ---------------------------------------------------------------

    def expression_offsets(self, index: int) -> np.ndarray:
        """Expression + blink displacement (68, 2) float32 at ``index``, before head motion."""
        expression, blink = self._expression(index)
        return (expression + blink * self._blink).astype(np.float32)

    def landmarks_at(self, index: int) -> np.ndarray:
        """True landmark positions (68, 2) float32 in frame ``index``.

        Exact up to the TPS grid error. (The blink's lid map acts in rest space, so under head
        motion the lids follow the TPS rather than the exact similarity: < 0.001 px, measured.)
        """
        expression, blink = self._expression(index)
        return self._move_head(index, self._base + expression + blink * self._blink).astype(
            np.float32
        )

    def events_between(self, start: int, stop: int) -> list[TruthEvent]:
        """Truth events (expressions and blinks) with onset in [start, stop), by onset."""
        if stop <= start:
            return []
        events: list[TruthEvent] = []
        for b in range(max(start, 0) // self._block_frames, (stop - 1) // self._block_frames + 1):
            block = self._block(b)
            events += block.expressions.events + block.blinks.events
        return sorted((e for e in events if start <= e.onset < stop), key=lambda e: e.onset)

    def _expression(self, index: int) -> tuple[np.ndarray, float]:
        """(expression displacement (68, 2), blink closure 0..1) at frame ``index``."""
        block = self._block(index // self._block_frames)
        k, weight = block.expressions.at(index)
        expression = weight * block.expressions.pattern[k] if k >= 0 else np.zeros((68, 2))
        if self._lead is not None:  # the driver moves now, the rest as it did lead frames ago
            late = index - self.config.lead_frames
            delayed = np.zeros((68, 2))
            if late >= 0:
                late_block = self._block(late // self._block_frames).expressions
                k_late, w_late = late_block.at(late)
                delayed = w_late * late_block.pattern[k_late] if k_late >= 0 else delayed
            expression = split_lead(self._lead, expression, delayed)
        return expression, block.blinks.at(index)[1]

    def _head(self, index: int) -> np.ndarray:
        """(tx px, ty px, angle rad) of the head-motion sequence at frame ``index``."""
        if not self.config.head_motion:
            return np.zeros(3)
        phase = 2 * np.pi * self._drift_f * index + self._drift_phase  # (3, 2)
        head = (self._drift_amp * np.sin(phase)).sum(axis=1)  # (3,)
        jerks = self._block(index // self._block_frames).jerks
        k, weight = jerks.at(index)
        if k >= 0:
            head += weight * jerks.pattern[k]
        return head

    def _move_head(self, index: int, points: np.ndarray) -> np.ndarray:
        tx, ty, angle = self._head(index)
        if tx == ty == angle == 0.0:
            return points
        c, s = math.cos(angle), math.sin(angle)
        rotated = (points - self._centre) @ np.array([[c, s], [-s, c]])  # (68, 2) by +angle
        return rotated + self._centre + (tx, ty)

    def _warp_inputs(self, index: int) -> tuple[np.ndarray, float, np.ndarray]:
        """``TpsWarper.region_map`` arguments: landmarks (68, 2) moved by the head and the
        expression, the blink closure, and the expression's moved landmarks, with and without
        it (K, 2)."""
        expression, blink = self._expression(index)
        driven = self._move_head(index, self._base + expression)  # (68, 2)
        moved = np.flatnonzero(np.any(expression != 0.0, axis=1))  # (K,)
        still = self._move_head(index, self._base[moved])  # (K, 2)
        return driven, blink, np.vstack([driven[moved], still])

    # ---- rendering -----------------------------------------------------------------------

    def backward_map(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """(map_x, map_y), each (H, W) float32, that ``cv2.remap`` uses for frame ``index``."""
        return self._warper.full_maps(*self._warp_inputs(index))

    def render(self, index: int, out: np.ndarray | None = None) -> np.ndarray:
        """Frame ``index`` as BGR uint8 (H, W, 3); written into ``out`` when given."""
        cfg = self.config
        if out is None:
            out = np.empty((cfg.height, cfg.width, 3), np.uint8)  # (H, W, 3)
        elif out.shape != (cfg.height, cfg.width, 3) or out.dtype != np.uint8:
            raise ValueError(f"out must be uint8 {(cfg.height, cfg.width, 3)}, got {out.shape}")
        warped = self._warped if self._post else out
        self._warper.warp(self._neutral, warped, *self._warp_inputs(index))
        if not self._post:
            return out
        t = index / cfg.fps
        gain, bias = 1.0, 0.0
        if cfg.light_drift:  # ~ +-5 % gain over ~10 s and a slow offset of a couple of levels
            p = self._light_phase
            gain = 1.0 + 0.035 * math.sin(2 * math.pi * t / 10.0 + p[0])
            gain += 0.015 * math.sin(2 * math.pi * t / 23.7 + p[1])
            bias = 2.0 * math.sin(2 * math.pi * t / 17.3 + p[2])
        if self._noise is None:
            cv2.convertScaleAbs(warped, dst=out, alpha=gain, beta=bias)
            return out
        block = self._block(index // self._block_frames)
        start = int(block.noise_offsets[index % self._block_frames])
        noise = self._noise[start : start + warped.size].reshape(warped.shape)  # (H, W, 3) view
        cv2.addWeighted(warped, gain, noise, 1.0, bias, dst=out, dtype=cv2.CV_8U)
        return out

    # ---- schedule ------------------------------------------------------------------------

    def _block(self, b: int) -> _Block:
        if b < 0:
            raise IndexError("synthetic frame indices start at 0")
        block = self._blocks.get(b)
        if block is None:
            if len(self._blocks) >= 8:  # a live source only ever needs the current block
                self._blocks.pop(next(iter(self._blocks)))
            block = self._blocks[b] = self._make_block(b)
        return block

    def _frames(self, seconds: tuple[float, float]) -> tuple[int, int]:
        return duration_frames(seconds, self.config.fps)

    def _make_block(self, b: int) -> _Block:
        cfg, fps, size = self.config, self.config.fps, self._block_frames
        gap = math.ceil(EXPRESSION_GAP_S * fps - 1e-6)
        margin = math.ceil(BLINK_MARGIN_S * fps - 1e-6)
        half = (gap + 1) // 2  # half the gap at both block edges keeps the gap across them
        lo, hi = max(b * size + half, self._lead_in), (b + 1) * size - 1 - half
        frames = {"micro": self._frames(MICRO_S), "macro": self._frames(MACRO_S)}
        frames["blink"] = self._frames(BLINK_S)

        # Expression and blink sequences are placed together so that blinks never touch an
        # expression (a blink inside a micro-expression would corrupt its truth). Counts are
        # rate x time, randomly rounded; a Poisson process with a given count has uniformly
        # spread events, which is what the random split of the slack below gives.
        rng = np.random.default_rng((cfg.seed, b, 0))
        minutes = max(hi - lo, 0) / fps / 60.0
        rates = {"micro": cfg.micro_per_min, "macro": cfg.macro_per_min}
        rates["blink"] = cfg.blinks_per_min
        kinds = [k for k, rate in rates.items() for _ in range(int(rate * minutes + rng.random()))]
        rng.shuffle(kinds)
        lengths = [int(rng.integers(frames[k][0], frames[k][1] + 1)) for k in kinds]
        while True:  # more than fits (absurd rates): drop events at random
            gaps = [gap if "blink" not in pair else margin for pair in itertools.pairwise(kinds)]
            slack = hi - lo - sum(lengths) - sum(gaps)
            if slack >= 0 or not kinds:
                break
            drop = int(rng.integers(len(kinds)))
            del kinds[drop], lengths[drop]
        shifts = np.floor(np.sort(rng.uniform(0, max(slack, 0), len(kinds)))).astype(int)
        rows: dict[str, list] = {"expression": [], "blink": []}
        for i, (kind, n) in enumerate(zip(kinds, lengths, strict=True)):
            onset = lo + int(shifts[i]) + sum(lengths[:i]) + sum(gaps[:i])
            apex, offset = onset + apex_step(n, rng), onset + n
            if kind == "blink":
                peak = round(self._warper.eyelids.peak_px, 3)
                event = _row(onset, apex, offset, kind, "", (BLINK_AU,), self._blink, peak)
                rows["blink"].append(event)
                continue
            emotion = str(rng.choice(list(EMOTIONS)))
            aus = EMOTIONS[emotion][int(rng.integers(len(EMOTIONS[emotion])))]
            unit = combo_pattern(aus, cfg.face_height_px, self._roll, rng)  # (68, 2)
            pattern = unit * rng.uniform(*(MICRO_PX if kind == "micro" else MACRO_PX))
            if self._lead is not None:  # the driver always moves, as far as the expression
                pattern += self._lead * np.linalg.norm(pattern, axis=1).max()
            make_warpable(pattern, self._base)
            amp = np.linalg.norm(pattern, axis=1).max()
            peak = round(float(amp), 3)  # the truth as written; the pattern matches it exactly
            pattern *= peak / amp
            rows["expression"].append(_row(onset, apex, offset, kind, emotion, aus, pattern, peak))
        expressions, blinks = _sequence(rows["expression"]), _sequence(rows["blink"])

        rng = np.random.default_rng((cfg.seed, b, 2))
        rows_j: list[tuple[int, int, int, np.ndarray, None]] = []
        if cfg.head_motion:
            scale = 60.0 * fps / JERKS_PER_MIN
            t = max(b * size + 1, self._lead_in) + rng.exponential(scale)
            while True:
                rise = int(rng.integers(math.ceil(0.08 * fps), math.ceil(0.15 * fps) + 1))
                fall = int(rng.integers(math.ceil(0.5 * fps), math.ceil(1.5 * fps) + 1))
                onset = int(t)
                if onset + rise + fall >= (b + 1) * size - 1:
                    break
                direction = rng.uniform(0, 2 * np.pi)
                shift = rng.uniform(1.0, 3.0)
                angle = np.radians(rng.uniform(-0.5, 0.5))
                move = np.array([shift * np.cos(direction), shift * np.sin(direction), angle])
                rows_j.append((onset, onset + rise, onset + rise + fall, move, None))
                t = onset + rise + fall + 1 + rng.exponential(scale)

        rng = np.random.default_rng((cfg.seed, b, 3))
        noise_offsets = rng.integers(0, self._noise_span, size)
        return _Block(expressions, blinks, _sequence(rows_j, (3,)), noise_offsets)


def _row(onset, apex, offset, kind, emotion, aus, pattern, peak) -> tuple:
    """(onset, apex, offset, pattern, TruthEvent) of one scheduled pulse."""
    moved = tuple(int(i) for i in np.flatnonzero(np.linalg.norm(pattern, axis=1) >= 0.5))
    aus = tuple(int(a) for a in aus)
    event = TruthEvent(onset, apex, offset, kind, emotion, aus, float(peak), moved)
    return onset, apex, offset, pattern, event


def _sequence(rows: list, shape: tuple[int, ...] = (68, 2)) -> _Sequence:
    times = np.array([r[:3] for r in rows], np.int64).reshape(-1, 3)  # (K, 3)
    pattern = np.array([r[3] for r in rows], np.float64).reshape(-1, *shape)  # (K, ...)
    events = [r[4] for r in rows if r[4] is not None]
    return _Sequence(times[:, 0], times[:, 1], times[:, 2], pattern, events)


def _load_photo(photo: str | None) -> tuple[np.ndarray, str]:
    """The photo as RGB uint8 and a name for messages and the landmark cache."""
    if photo is None:
        import skimage.data

        return skimage.data.astronaut(), "skimage astronaut"
    bgr = cv2.imread(str(photo), cv2.IMREAD_COLOR)
    if bgr is None:
        raise MexliveError(f"cannot read photo {photo}")
    return np.ascontiguousarray(bgr[..., ::-1]), str(Path(photo).resolve())
