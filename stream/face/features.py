"""FeatureRow per frame: ROI flow over two baselines, head motion and appearance.

For every aligned face the extractor compares the current face with two reference faces:

- **onset baseline** (``onset_ms``, default 133 ms, i.e. 4 frames at 30 fps): the past face
  closest to that age, within 60–250 ms, so the flow spans an onset→apex rise whatever the
  frame rate (chosen by timestamp, not by frame count);
- **window baseline** (ME-TST style): the oldest face of the sliding window (``window_ms``),
  i.e. the window's first frame. A sliding window rather than tumbling ones, so that the
  causal spotter never sees a window boundary.

Per ROI (the 13 facial regions of ``stream/face/rois.py``, nose-bridge anchor excluded):
flow dx, dy, magnitude and strain for each baseline, pooled over the strongest 30 % of vectors
after subtracting the anchor's mean flow (head-motion removal); and two appearance channels
(MESFusion: intensity and texture changes that flow misses): the signed and the absolute grey
change over the onset baseline, normalised by the reference patch's contrast. Plus 6 head-motion
channels: the anchor's flow for both baselines and the change of the alignment's log-scale and
rotation over the onset baseline. Last, per facial ROI, the MEAN flow (dx, dy) over each
baseline minus the anchor's mean flow: the top-30 % pooling picks out the noisiest vectors
of untextured skin, while the patch mean is a quieter, linear measure of a region's shift (a
small expression moves a whole region a little), which the spotters normalise by the person's
own running noise (``engines/motion.py``).

A gap (dropped frames, face lost, re-detection) empties the history: no feature is computed
across it, and rows stay invalid until a reference exists again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numba import njit

from stream.contracts import AlignedFace, FeatureRow
from stream.face.flow import FlowConfig, RoiFlow
from stream.face.rois import ANCHOR, ROI_NAMES, roi_corners

FLOW_CHANNELS = ("dx", "dy", "mag", "strain")
APPEARANCE_CHANNELS = ("app_delta", "app_abs")
HEAD_CHANNELS = (
    "head_dx_on",
    "head_dy_on",
    "head_dx_win",
    "head_dy_win",
    "head_dlogscale",
    "head_drot",
)
MEAN_CHANNELS = ("mean_dx_on", "mean_dy_on", "mean_dx_win", "mean_dy_win")
FACE_ROIS = tuple(name for i, name in enumerate(ROI_NAMES) if i != ANCHOR)
PER_ROI = 2 * len(FLOW_CHANNELS) + len(APPEARANCE_CHANNELS)  # values per facial ROI (10)


def roi_block(values: np.ndarray) -> np.ndarray:
    """The per-ROI part of a feature row as (R-1, PER_ROI): onset flow (dx, dy, mag, strain),
    window flow (same), appearance (delta, abs)."""
    return values[: len(FACE_ROIS) * PER_ROI].reshape(len(FACE_ROIS), PER_ROI)


def feature_names() -> tuple[str, ...]:
    """Names of the F feature channels, in row order."""
    names = []
    for roi in FACE_ROIS:
        names += [f"{roi}.{ch}_on" for ch in FLOW_CHANNELS]
        names += [f"{roi}.{ch}_win" for ch in FLOW_CHANNELS]
        names += [f"{roi}.{ch}" for ch in APPEARANCE_CHANNELS]
    means = [f"{roi}.{ch}" for roi in FACE_ROIS for ch in MEAN_CHANNELS]
    return (*names, *HEAD_CHANNELS, *means)


@dataclass(frozen=True)
class FeatureConfig:
    face_size: int = 160
    onset_ms: float = 133.0
    onset_range_ms: tuple[float, float] = (60.0, 250.0)
    window_ms: float = 1000.0
    max_fps: float = 120.0  # sizes the history
    flow: FlowConfig = field(default_factory=FlowConfig)


class FeatureExtractor:
    """Turns aligned faces into FeatureRows; one per stream, fed every frame in order."""

    def __init__(self, config: FeatureConfig | None = None) -> None:
        self.config = config or FeatureConfig()
        size = self.config.face_size
        self.names = feature_names()
        self.n_features = len(self.names)
        self._n_hist = math.ceil(self.config.window_ms / 1e3 * self.config.max_fps) + 2
        self._faces = np.zeros((self._n_hist, size, size), np.float32)  # (N, S, S) in 0..1
        self._t_s = np.zeros(self._n_hist, np.float64)  # media time of each stored face
        self._landmarks = np.zeros((self._n_hist, 68, 2), np.float32)
        self._transforms = np.zeros((self._n_hist, 2, 3), np.float32)
        self._count = 0  # faces stored since the last reset
        self._flow = RoiFlow(self.config.flow, n_rois=len(ROI_NAMES))
        self._values = np.zeros(self.n_features, np.float32)
        self._app = np.zeros((len(FACE_ROIS), 2), np.float32)  # (R-1, 2)
        tiny = np.zeros((4, 4), np.float32)  # compile (or load) the kernel now, not mid-stream
        _appearance_kernel(tiny, tiny, np.zeros((2, 2), np.int32), 2, 0, self._app)
        self._face_rows = np.array([i for i in range(len(ROI_NAMES)) if i != ANCHOR])
        self.resets = 0

    def reset(self) -> None:
        """Forget the history (a gap): nothing is compared across it."""
        self._count = 0
        self.resets += 1

    def update(self, aligned: AlignedFace, gap: bool = False) -> FeatureRow:
        """Features of this frame; ``gap`` says frames were lost just before it."""
        if gap or not aligned.ok or aligned.redetected:
            self.reset()
        if not aligned.ok:
            return self._row(aligned, valid=False)
        slot = self._count % self._n_hist
        np.multiply(aligned.face, np.float32(1 / 255), out=self._faces[slot])
        self._t_s[slot] = aligned.t_s
        self._landmarks[slot] = aligned.landmarks
        self._transforms[slot] = aligned.transform
        self._count += 1
        onset, window = self._references(aligned.t_s)
        if onset is None:
            return self._row(aligned, valid=False)
        self._compute(slot, onset, window)
        return self._row(aligned, valid=True)

    # -- pieces ---------------------------------------------------------------------------
    def _references(self, t_s: float) -> tuple[int | None, int]:
        """Slots of the onset reference (None if no past face is 60–250 ms old) and the window
        reference (the oldest face within ``window_ms``)."""
        newest = self._count - 1
        backs = np.arange(1, min(self._count, self._n_hist))
        slots = (newest - backs) % self._n_hist  # newest first
        ages_ms = (t_s - self._t_s[slots]) * 1e3
        low, high = self.config.onset_range_ms
        usable = (ages_ms >= low) & (ages_ms <= high)
        if not usable.any():
            return None, newest % self._n_hist
        onset = int(slots[usable][np.argmin(np.abs(ages_ms[usable] - self.config.onset_ms))])
        in_window = ages_ms <= max(self.config.window_ms, ages_ms[slots == onset][0])
        return onset, int(slots[in_window][-1])  # the oldest face still inside the window

    def _compute(self, slot: int, onset: int, window: int) -> None:
        cfg = self.config
        corners = roi_corners(self._landmarks[window], cfg.flow.patch, cfg.face_size)  # (R, 2)
        cur = self._faces[slot]
        per_roi = roi_block(self._values)  # a view: writes land in the row
        n_head = len(FACE_ROIS) * PER_ROI + len(HEAD_CHANNELS)
        head = self._values[len(FACE_ROIS) * PER_ROI : n_head]
        means = self._values[n_head:].reshape(len(FACE_ROIS), len(MEAN_CHANNELS))  # (R-1, 2)
        for col, ref_slot in ((0, onset), (4, window)):
            pooled, anchor = self._pooled_without_head(self._faces[ref_slot], cur, corners)
            per_roi[:, col : col + 4] = pooled
            head[col // 2 : col // 2 + 2] = anchor
            flow_mean = self._flow.flow.mean(axis=(1, 2))  # (R, 2), before the next compute
            means[:, col // 2 : col // 2 + 2] = flow_mean[self._face_rows] - flow_mean[ANCHOR]
        per_roi[:, 8:PER_ROI] = self._appearance(self._faces[onset], cur, corners)
        head[4:6] = _similarity_change(self._transforms[onset], self._transforms[slot])

    def _pooled_without_head(self, ref, cur, corners) -> tuple[np.ndarray, np.ndarray]:
        """(R-1, 4) pooled flow of the facial ROIs with the anchor's mean flow removed, and the
        anchor's mean flow (2,)."""
        self._flow.compute(ref, cur, corners)
        pooled = self._flow.pool_relative(ANCHOR)  # (R, 4)
        return pooled[self._face_rows], pooled[ANCHOR, :2]

    def _appearance(self, ref, cur, corners) -> np.ndarray:
        """(R-1, 2): mean signed and absolute grey change per ROI over its reference contrast."""
        _appearance_kernel(ref, cur, corners, self.config.flow.patch, ANCHOR, self._app)
        return self._app

    def _row(self, aligned: AlignedFace, valid: bool) -> FeatureRow:
        values = self._values.copy() if valid else np.zeros(self.n_features, np.float32)
        return FeatureRow(aligned.seq, aligned.t_mono_ns, values, valid)


def _similarity_change(before: np.ndarray, after: np.ndarray) -> tuple[float, float]:
    """Change of log-scale and rotation (rad) between two (2, 3) similarity transforms."""
    s0, r0 = math.hypot(before[0, 0], before[1, 0]), math.atan2(before[1, 0], before[0, 0])
    s1, r1 = math.hypot(after[0, 0], after[1, 0]), math.atan2(after[1, 0], after[0, 0])
    d_rot = (r1 - r0 + math.pi) % (2 * math.pi) - math.pi
    return math.log(s1 / s0) if s0 > 0 and s1 > 0 else 0.0, d_rot


@njit(cache=True, nogil=True)
def _appearance_kernel(ref, cur, corners, patch, anchor, out):
    """out (R-1, 2) = mean(cur - ref) / std(ref) and mean|cur - ref| / std(ref) per facial
    ROI patch (the anchor skipped); std + 1e-3 so flat skin does not divide by zero."""
    row = 0
    n = patch * patch
    for roi in range(corners.shape[0]):
        if roi == anchor:
            continue
        x0, y0 = corners[roi, 0], corners[roi, 1]
        s = s2 = d = a = 0.0
        for i in range(patch):
            for j in range(patch):
                r = ref[y0 + i, x0 + j]
                diff = cur[y0 + i, x0 + j] - r
                s += r
                s2 += r * r
                d += diff
                a += abs(diff)
        mean = s / n
        scale = np.sqrt(max(s2 / n - mean * mean, 0.0)) + 1e-3
        out[row, 0] = d / n / scale
        out[row, 1] = a / n / scale
        row += 1
