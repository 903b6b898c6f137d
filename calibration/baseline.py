"""Neutral-face baseline: a person's noise floor, from a few seconds of their still face.

Everyone's face, camera and light differ: a few seconds of neutral face give, per ROI, how
much the features move when nothing happens, and how high the spotter's apex score goes on
that person's noise. The decoder's threshold is floored there, so a restless face or a noisy
camera does not turn noise into events. Robust statistics (median + k·MAD) keep one blink or
a small expression during calibration from inflating the floor; a face that moved for most of
the calibration (talking, turning) is what they cannot absorb, so the floor is capped at
``max_floor`` (below most events' apex scores, 0.36–0.95 measured): a capped floor keeps the
decoder alive, and ``floor_capped`` says the baseline should be taken again.

Takes arrays, not frames (``calibration`` never imports ``stream``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Baseline:
    """Noise levels of one person in front of one camera.

    Attributes:
        roi_noise: (R,) robust spread of each ROI's onset-baseline flow magnitude, px.
        score_floor: apex score a neutral face stays under (decoder threshold floor), capped.
        n_frames: valid frames it was computed from.
        measured_floor: the floor before the cap.
    """

    roi_noise: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    score_floor: float = 0.0
    n_frames: int = 0
    measured_floor: float = 0.0

    @property
    def floor_capped(self) -> bool:
        """The face was not still during calibration: the measured floor hit the cap."""
        return self.measured_floor > self.score_floor

    @classmethod
    def from_neutral(
        cls,
        roi_magnitudes: np.ndarray,
        apex_scores: np.ndarray,
        valid: np.ndarray | None = None,
        k: float = 6.0,
        min_frames: int = 30,
        max_floor: float = 0.6,
    ) -> Baseline:
        """Baseline from a neutral stretch.

        Args:
            roi_magnitudes: (N, R) per-frame flow magnitude of each ROI.
            apex_scores: (N,) the spotter's apex score on the same frames.
            valid: (N,) frames with a face (others are ignored).
            k: how many robust standard deviations above the median count as "not noise".
            min_frames: fewer valid frames than this raise ValueError.
            max_floor: the highest score floor a baseline may set (see the module docstring).
        """
        mags = np.asarray(roi_magnitudes, np.float64)
        scores = np.asarray(apex_scores, np.float64)
        keep = np.ones(len(scores), bool) if valid is None else np.asarray(valid, bool)
        keep &= np.isfinite(scores) & np.isfinite(mags).all(axis=1)
        if keep.sum() < min_frames:
            raise ValueError(f"need {min_frames} valid neutral frames, got {int(keep.sum())}")
        mags, scores = mags[keep], scores[keep]
        measured = float(robust_level(scores[:, None], k)[0])
        return cls(
            roi_noise=robust_level(mags, k).astype(np.float32),
            score_floor=min(measured, max_floor),
            n_frames=int(keep.sum()),
            measured_floor=measured,
        )


def robust_level(values: np.ndarray, k: float) -> np.ndarray:
    """Per column: median + k · 1.4826 · MAD (the MAD scaled to a Gaussian's σ)."""
    median = np.median(values, axis=0)
    mad = np.median(np.abs(values - median), axis=0)
    return median + k * 1.4826 * mad
