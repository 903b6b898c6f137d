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
drift and sensor noise come last. ``SyntheticConfig.deformation`` swaps the TPS for another
family with the same control points (``stream/synthetic/deform.py``: a piecewise-affine mesh or
Gaussian kernels), for training on several generators and validating on a held-out one.

Everything is a pure function of (seed, frame index): events are scheduled lazily in 30 s
blocks, each from ``np.random.default_rng((seed, block, k))`` (``stream/synthetic/schedule.py``);
noise is a window into a pre-drawn noise bank at an offset drawn per frame. ``render(i)`` gives
the same pixels in any order, so the source is endless and random-access. ``write_video`` and
``write_synthetic_set`` put clips on disk with their truth CSV (``stream/synthetic/truth.py``).

Example:
    animator = FaceAnimator(SyntheticConfig(seed=7))
    frame = animator.render(120)                      # BGR uint8 (480, 640, 3)
    truth = animator.events_between(0, 30 * 60)       # the first minute's events
    write_synthetic_set("data/", count=10, seconds=30, fps=30.0)
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import cv2
import numpy as np

from stream.errors import MexliveError
from stream.output.console import clip_truth
from stream.synthetic.au import face_roll, lead_push, split_lead
from stream.synthetic.deform import make_warper
from stream.synthetic.schedule import NOISE_SPAN, EventSchedule, SyntheticConfig
from stream.synthetic.tps import frame_photo, photo_landmarks
from stream.synthetic.truth import TruthEvent, read_truth_csv, write_truth_csv
from stream.synthetic.writers import H264Writer, Y4MWriter

__all__ = [
    "FaceAnimator",
    "SyntheticConfig",
    "TruthEvent",
    "read_truth_csv",
    "write_synthetic_set",
    "write_truth_csv",
    "write_video",
]

FACE_CENTRE_Y = 0.45  # face box centre, as a fraction of the frame height (a bit above middle)


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
        self._warper = make_warper(
            cfg.deformation, base, self._centre, cfg.face_height_px, (cfg.width, cfg.height)
        )
        self.anchors_px = self._warper.anchors_px  # (16, 2) the warp's fixed ring
        self._blink = self._warper.eyelids.pattern  # (68, 2) lids at full closure
        self._lead = lead_push(cfg.lead_region, self._roll)  # (68, 2) unit push, or None

        fps = cfg.fps
        peak = self._warper.eyelids.peak_px
        self._schedule = EventSchedule(cfg, base, self._roll, self._blink, peak, self._lead)
        # Drift and light: a few slow sinusoids per channel with per-seed phases and periods.
        rng = np.random.default_rng((cfg.seed, 0x5EED))
        self._drift_f = rng.uniform(0.03, 0.12, (3, 2)) / fps  # cycles per frame
        self._drift_phase = rng.uniform(0, 2 * np.pi, (3, 2))
        self._drift_amp = np.array([[1.6, 0.9], [1.0, 0.5], [np.radians(0.8), np.radians(0.4)]])
        self._light_phase = rng.uniform(0, 2 * np.pi, 3)

        frame_size = cfg.height * cfg.width * 3
        self._noise = None
        if cfg.noise_sigma > 0:
            bank = np.random.default_rng((cfg.seed, 0x4015E)).standard_normal(
                frame_size + NOISE_SPAN, dtype=np.float32
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
        return self._schedule.events_between(start, stop)

    def _expression(self, index: int) -> tuple[np.ndarray, float]:
        """(expression displacement (68, 2), blink closure 0..1) at frame ``index``."""
        block = self._schedule.at(index)
        k, weight = block.expressions.at(index)
        expression = weight * block.expressions.pattern[k] if k >= 0 else np.zeros((68, 2))
        if self._lead is not None:  # the driver moves now, the rest as it did lead frames ago
            late = index - self.config.lead_frames
            delayed = np.zeros((68, 2))
            if late >= 0:
                late_block = self._schedule.at(late).expressions
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
        jerks = self._schedule.at(index).jerks
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
        """``RegionWarper.region_map`` arguments: landmarks (68, 2) moved by the head and the
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
        block = self._schedule.at(index)
        start = int(block.noise_offsets[index % self._schedule.block_frames])
        noise = self._noise[start : start + warped.size].reshape(warped.shape)  # (H, W, 3) view
        cv2.addWeighted(warped, gain, noise, 1.0, bias, dst=out, dtype=cv2.CV_8U)
        return out


def _load_photo(photo: str | None) -> tuple[np.ndarray, str]:
    """The photo as RGB uint8 and a name for messages and the landmark cache."""
    if photo is None:
        import skimage.data

        return skimage.data.astronaut(), "skimage astronaut"
    bgr = cv2.imread(str(photo), cv2.IMREAD_COLOR)
    if bgr is None:
        raise MexliveError(f"cannot read photo {photo}")
    return np.ascontiguousarray(bgr[..., ::-1]), str(Path(photo).resolve())


# ---- clips on disk ---------------------------------------------------------------------------


def write_video(
    path: str | Path, animator: FaceAnimator, n_frames: int, progress: bool = False
) -> Path:
    """Render frames [0, n_frames) to ``.mp4`` (H.264) or ``.y4m``, truth CSV beside it.

    The CSV (same stem, ``.csv``) holds the events that lie wholly inside the clip: an event cut
    by the clip's end would be a partial truth.
    """
    return _write_video(Path(path), animator, n_frames, "frame" if progress else None)


def _write_video(path: Path, animator: FaceAnimator, n_frames: int, label: str | None) -> Path:
    cfg = animator.config
    writers = {".mp4": H264Writer, ".y4m": Y4MWriter}
    if path.suffix.lower() not in writers:
        raise MexliveError(f"unsupported synthetic video format {path.suffix!r}: use .mp4 or .y4m")
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = np.empty((cfg.height, cfg.width, 3), np.uint8)  # (H, W, 3) reused
    every = max(1, n_frames // 100)
    with writers[path.suffix.lower()](path, cfg.width, cfg.height, cfg.fps) as sink:
        for i in range(n_frames):
            sink.write(animator.render(i, frame))
            if label is not None and (i % every == 0 or i == n_frames - 1):
                print(f"\r{label} {i + 1}/{n_frames}", end="", file=sys.stderr, flush=True)
    if label is not None:
        print(file=sys.stderr)
    # an expression cut by the end of the clip is still truth: its row ends on the last frame
    events = clip_truth(animator.events_between(0, n_frames), n_frames - 1)
    write_truth_csv(path.with_suffix(".csv"), events)
    return path


def write_synthetic_set(
    out_dir: str | Path,
    count: int,
    seconds: float,
    fps: float,
    seed: int = 0,
    fmt: str = "mp4",
    photos: list[str] | None = None,
    progress: bool = True,
) -> list[Path]:
    """Write ``count`` clips ``synthetic_000.<fmt>``... with truth CSVs; returns the video paths.

    Clip i uses seed ``seed * 1000 + i`` and photo ``photos[i % len(photos)]`` (the astronaut
    when ``photos`` is None), so the same arguments give byte-identical files.
    """
    if fmt not in ("mp4", "y4m"):
        raise MexliveError(f"unsupported synthetic video format {fmt!r}: use mp4 or y4m")
    out = Path(out_dir)
    n_frames = round(seconds * fps)
    paths = []
    for i in range(count):
        photo = photos[i % len(photos)] if photos else None
        animator = FaceAnimator(SyntheticConfig(fps=fps, seed=seed * 1000 + i, photo=photo))
        label = f"clip {i + 1}/{count} frame" if progress else None
        paths.append(_write_video(out / f"synthetic_{i:03d}.{fmt}", animator, n_frames, label))
    return paths
