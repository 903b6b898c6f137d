"""Feature rows normalised by the person's own running noise: what both spotters read.

A talking mouth moves several pixels every 133 ms while a micro-expression moves a brow by
one; raw flow magnitudes say "motion", not "expression". So every motion channel is turned
into a z-score against its own trailing ``history_s`` seconds (median and MAD, recomputed every
``refresh_s``), per region: talking raises the mouth's noise floor, not the brows'. Causal and
per stream, by timestamp, so any frame rate works.

Per facial region r (``FACE_ROIS`` of the feature row, R = 13), channels in this order:

    z_shift_on   |mean flow over the onset baseline (≈133 ms)|, z-scored
    z_shift_win  |mean flow over the window baseline (≈1 s)|, z-scored: an expression rises
                 from rest and returns to it, so this bumps once over onset → offset
    z_mag_on     top-30 % flow magnitude over the onset baseline, z-scored
    z_app        absolute appearance change, z-scored
    dir_x, dir_y the window shift's direction, divided by its robust scale (signed)

then the head: z of the anchor's speed over the onset baseline, |Δ log-scale| and |Δ rotation|.
Rows that are not valid give zeros and are not added to the history (a gap keeps the person's
noise level: it is a property of the person and the camera, not of the stretch of frames).

``MotionNormaliser.update`` runs per frame live; the training data goes through the same
``update`` loop (``normalise_clip``), so live and training see identical numbers.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

ROI_CHANNELS = ("z_shift_on", "z_shift_win", "z_mag_on", "z_app", "dir_x", "dir_y")
HEAD_CHANNELS = ("z_head_speed", "z_head_scale", "z_head_rot")
MAD_TO_SIGMA = 1.4826  # MAD of a normal distribution × this = its standard deviation


@dataclass(frozen=True)
class MotionConfig:
    history_s: float = 3.0  # the trailing stretch a channel's noise is measured on
    refresh_s: float = 0.1  # how often the medians are recomputed (cost, not accuracy)
    min_samples: int = 5  # fewer valid rows than this: every z is 0 (no noise known yet)
    shift_floor_px: float = 0.05  # scale floors (aligned-face px): a perfectly still face
    mag_floor_px: float = 0.1  # must not turn compression flicker into z = 50
    app_floor: float = 0.01
    head_floor_px: float = 0.05
    head_floor_rad: float = 0.002
    z_clip: float = 30.0  # a face re-found at another scale must not emit z = 1e4


def roi_names(feature_names: Sequence[str]) -> tuple[str, ...]:
    """The facial regions of a feature layout, in row order (those with a ``.mag_on``)."""
    return tuple(n[: -len(".mag_on")] for n in feature_names if n.endswith(".mag_on"))


def motion_names(feature_names: Sequence[str]) -> tuple[str, ...]:
    """Names of the normalised channels for a feature layout, in output order."""
    rois = roi_names(feature_names)
    return (*(f"{r}.{c}" for r in rois for c in ROI_CHANNELS), *HEAD_CHANNELS)


class MotionNormaliser:
    """Raw feature rows (F,) → normalised motion rows (D,), one stream, frame by frame.

    Args:
        feature_names: the raw layout (``stream.face.features.feature_names()``); it must hold,
            per region, ``mag_on``, ``app_abs``, ``mean_dx_on/dy_on/dx_win/dy_win``, and the
            head channels ``head_dx_on``, ``head_dy_on``, ``head_dlogscale``, ``head_drot``.
        config: noise window and floors.

    After ``update``: ``roi_z`` (R,) the window-shift z of each region (what the classic spotter
    scores and ``mexlive inspect`` draws), ``head_z`` the head-speed z.
    """

    def __init__(self, feature_names: Sequence[str], config: MotionConfig | None = None) -> None:
        self.config = cfg = config or MotionConfig()
        names = list(feature_names)
        self.rois = roi_names(names)
        self.names = motion_names(names)
        if not self.rois:
            raise ValueError("the feature layout names no region (.mag_on)")

        def cols(suffix: str) -> np.ndarray:
            try:
                return np.array([names.index(f"{r}.{suffix}") for r in self.rois])
            except ValueError:
                raise ValueError(f"the feature layout lacks the {suffix} channels") from None

        self._on = np.stack([cols("mean_dx_on"), cols("mean_dy_on")], 1)  # (R, 2)
        self._win = np.stack([cols("mean_dx_win"), cols("mean_dy_win")], 1)  # (R, 2)
        self._mag, self._app = cols("mag_on"), cols("app_abs")  # (R,), (R,)
        head = ["head_dx_on", "head_dy_on", "head_dlogscale", "head_drot"]
        missing = [h for h in head if h not in names]
        if missing:
            raise ValueError(f"the feature layout lacks {missing}")
        self._head = np.array([names.index(h) for h in head])  # (4,)
        r = len(self.rois)
        # Raw magnitudes whose noise is tracked: 4 per region, then the 3 head measures.
        floors = [cfg.shift_floor_px, cfg.shift_floor_px, cfg.mag_floor_px, cfg.app_floor]
        self._floor = np.concatenate(
            [np.tile(floors, r), [cfg.head_floor_px, cfg.head_floor_rad, cfg.head_floor_rad]]
        ).astype(np.float64)  # (4R + 3,)
        self._history: deque[tuple[float, np.ndarray]] = deque()
        self._median = np.zeros(4 * r + 3)  # (C,)
        self._scale = self._floor.copy()  # (C,)
        self._refreshed_at = -np.inf
        self._raw = np.zeros(4 * r + 3)  # (C,) this frame's magnitudes
        self._out = np.zeros(len(self.names), np.float32)  # (D,)
        self.roi_z = np.zeros(r, np.float32)  # (R,)
        self.head_z = 0.0

    @property
    def width(self) -> int:
        return len(self.names)

    def update(self, values: np.ndarray, t_s: float, valid: bool) -> np.ndarray:
        """This frame's normalised row (D,) float32 (a reused buffer: copy to keep it)."""
        self._out[:] = 0.0
        self.roi_z[:] = 0.0
        self.head_z = 0.0
        if not valid:
            return self._out
        raw = self._measure(values)
        self._remember(t_s, raw)
        if len(self._history) < self.config.min_samples:
            return self._out
        z = np.clip((raw - self._median) / self._scale, -self.config.z_clip, self.config.z_clip)
        r = len(self.rois)
        per_roi = self._out[: 6 * r].reshape(r, 6)  # a view: writes land in the row
        per_roi[:, :4] = z[: 4 * r].reshape(r, 4)
        win = values[self._win].astype(np.float64)  # (R, 2)
        win_scale = self._scale[1 : 4 * r : 4]  # (R,) robust scale of |window shift|
        per_roi[:, 4:6] = np.clip(win / win_scale[:, None], -self.config.z_clip, self.config.z_clip)
        self._out[6 * r :] = z[4 * r :]
        self.roi_z[:] = per_roi[:, 1]
        self.head_z = float(z[4 * r])
        return self._out

    def _measure(self, values: np.ndarray) -> np.ndarray:
        """(C,) the magnitudes whose noise is tracked, from one raw row."""
        r = len(self.rois)
        raw = self._raw
        per_roi = raw[: 4 * r].reshape(r, 4)
        per_roi[:, 0] = np.hypot(values[self._on[:, 0]], values[self._on[:, 1]])
        per_roi[:, 1] = np.hypot(values[self._win[:, 0]], values[self._win[:, 1]])
        per_roi[:, 2] = values[self._mag]
        per_roi[:, 3] = values[self._app]
        head = values[self._head]
        raw[4 * r] = np.hypot(head[0], head[1])
        raw[4 * r + 1] = abs(head[2])
        raw[4 * r + 2] = abs(head[3])
        return raw

    def _remember(self, t_s: float, raw: np.ndarray) -> None:
        history, cfg = self._history, self.config
        history.append((t_s, raw.copy()))
        while t_s - history[0][0] > cfg.history_s:
            history.popleft()
        # Recomputed on a clock, not every frame: at 200 fps a 3 s median per frame would
        # cost more than the spotter itself. Also at once while the history is short.
        if t_s - self._refreshed_at >= cfg.refresh_s or len(history) <= 2 * cfg.min_samples:
            stack = np.stack([v for _, v in history])  # (N, C)
            self._median = np.median(stack, axis=0)
            mad = np.median(np.abs(stack - self._median), axis=0)
            self._scale = np.maximum(MAD_TO_SIGMA * mad, self._floor)
            self._refreshed_at = t_s


def normalise_clip(
    values: np.ndarray,
    valid: np.ndarray,
    t_s: np.ndarray,
    feature_names: Sequence[str],
    config: MotionConfig | None = None,
) -> np.ndarray:
    """A whole clip through one ``MotionNormaliser``, frame by frame as live.

    Args:
        values: (L, F) raw rows; valid: (L,) bool; t_s: (L,) media time in seconds.

    Returns:
        (L, D) float32 normalised rows (zeros where not valid).
    """
    normaliser = MotionNormaliser(feature_names, config)
    out = np.zeros((len(values), normaliser.width), np.float32)  # (L, D)
    for i in range(len(values)):
        out[i] = normaliser.update(values[i], float(t_s[i]), bool(valid[i]))
    return out
