"""A training-free reference spotter: region motion against the person's own noise, peaks.

The MEGC-style classic recipe, on the feature rows every spotter reads, so a learned model
has something honest to beat (design.md, "Evaluation that means something"):

1. each facial region's shift against the window baseline (≈1 s ago: an expression rises from
   rest and returns to it, so the shift bumps once over onset → offset), with the nose-bridge
   anchor's shift removed, and the alignment's similarity transform already removing the rest
   of the head's motion (``stream/face/features.py``);
2. z-scored against the region's own trailing 3 s (median / MAD, ``engines/motion.py``): a
   talking mouth raises its own floor, not the brows';
3. a region counts only as far as it also moved over the onset baseline (≈133 ms) in the last
   ``recent_s``: the 1 s reference makes an echo one window after every expression (the face
   at rest now, the reference still displaced), and during an echo the face itself is still;
4. the score is the mean of the ``top_k`` largest region z-scores (expressions move regions in
   pairs, noise rarely does), damped while the head itself moves fast;
5. peaks through the one streaming decoder (``engines/decoding.py``) with a threshold relative
   to the score's own running spread, floored at ``min_threshold``; intervals from the bump's
   half-maximum width (a raised-cosine bump's FWHM is half its length: ``width_scale`` 2), and
   the decoder's 0.12 s minimum. Micro when onset → offset ≤ 0.5 s.

Its settings were chosen on the validation split, never on the cross-domain suite.
No emotion: the classic says "something moved", so its events carry uniform probabilities
unless the recognizer names the emotion (``stream/live/recognition.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from engines.decoders import decode_trace
from engines.decoding import DecoderConfig, Spotted
from engines.labels import EMOTIONS
from engines.motion import MotionConfig, MotionNormaliser

UNIFORM = np.full(len(EMOTIONS), 1.0 / len(EMOTIONS), np.float32)  # (E,)


def classic_decoder() -> DecoderConfig:
    """How the classic's score is decoded (z units, a bump spanning the whole expression)."""
    return DecoderConfig(mad_k=4.0, min_threshold=6.0, width_scale=2.0)


@dataclass(frozen=True)
class ClassicConfig:
    top_k: int = 2
    head_gate_z: float = 4.0  # head speed z above this damps the score in proportion
    recent_s: float = 0.25  # how long a region's onset motion vouches for its window shift
    motion: MotionConfig = field(default_factory=MotionConfig)
    decoder: DecoderConfig = field(default_factory=classic_decoder)


class ClassicSpotter:
    """Score one stream's feature rows frame by frame; no weights, no training.

    Args:
        feature_names: the raw feature layout (``stream.face.features.feature_names()``).
        config: top-k, head gate, noise window, decoder settings.

    Example:
        >>> spotter = ClassicSpotter(names)                              # doctest: +SKIP
        >>> score = spotter.step(row.values, t_s, row.valid)             # doctest: +SKIP
    """

    def __init__(self, feature_names: Sequence[str], config: ClassicConfig | None = None) -> None:
        self.config = config or ClassicConfig()
        self.normaliser = MotionNormaliser(feature_names, self.config.motion)
        self.rois = self.normaliser.rois
        self.gate = OnsetGate(len(self.rois), self.config.recent_s)

    @property
    def roi_z(self) -> np.ndarray:
        """(R,) each region's gated window-shift z at the last step."""
        return self.gate.gated

    def step(self, values: np.ndarray, t_s: float, valid: bool) -> float:
        """The apex-like score of this frame (≥ 0, z units); NaN on an invalid row."""
        motion = self.normaliser.update(values, t_s, valid)
        if not valid:
            self.gate.reset()
            return float("nan")
        self.gate.update(motion, t_s)
        return classic_score(self.gate.gated, self.normaliser.head_z, self.config)


class OnsetGate:
    """Each region's window-shift z, capped by its recent onset-shift z (the echo gate).

    ``recent`` decays exponentially by time constant ``recent_s``, by timestamp, so the gate
    holds at any frame rate.
    """

    def __init__(self, n_rois: int, recent_s: float) -> None:
        self.recent_s = recent_s
        self.recent = np.zeros(n_rois, np.float32)  # (R,) decayed max of the onset-shift z
        self.gated = np.zeros(n_rois, np.float32)  # (R,)
        self._t_s: float | None = None

    def reset(self) -> None:
        self.recent[:] = 0.0
        self.gated[:] = 0.0
        self._t_s = None

    def update(self, motion: np.ndarray, t_s: float) -> np.ndarray:
        """motion: a ``MotionNormaliser`` row (D,); returns the gated z (R,)."""
        per_roi = motion[: 6 * len(self.recent)].reshape(len(self.recent), 6)  # (R, 6)
        dt = 0.0 if self._t_s is None else max(t_s - self._t_s, 0.0)
        self._t_s = t_s
        decayed = self.recent * np.float32(np.exp(-dt / self.recent_s))  # (R,)
        np.maximum(per_roi[:, 0], decayed, out=self.recent)
        np.minimum(per_roi[:, 1], self.recent, out=self.gated)
        return self.gated


def classic_score(roi_z: np.ndarray, head_z: float, config: ClassicConfig) -> float:
    """Mean of the top-k positive region z-scores (R,), damped by fast head motion."""
    k = min(config.top_k, len(roi_z))
    top = np.partition(np.maximum(roi_z, 0.0), len(roi_z) - k)[-k:]  # (k,)
    score = float(top.mean())
    if head_z > config.head_gate_z:
        score *= config.head_gate_z / head_z
    return score


def classic_trace(
    values: np.ndarray,
    valid: np.ndarray,
    t_s: np.ndarray,
    feature_names: Sequence[str],
    config: ClassicConfig | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """A whole clip, frame by frame as live: score (L,) (NaN where invalid), roi_z (L, R)."""
    spotter = ClassicSpotter(feature_names, config)
    score = np.full(len(values), np.nan)  # (L,)
    roi_z = np.zeros((len(values), len(spotter.rois)), np.float32)  # (L, R)
    for i in range(len(values)):
        score[i] = spotter.step(values[i], float(t_s[i]), bool(valid[i]))
        roi_z[i] = spotter.normaliser.roi_z
    return score, roi_z


def classic_spot(
    values: np.ndarray,
    valid: np.ndarray,
    fps: float,
    feature_names: Sequence[str],
    config: ClassicConfig | None = None,
) -> list[Spotted]:
    """The classic's intervals over a whole clip (frame i at i / fps), decoded as live."""
    config = config or ClassicConfig()
    t_s = np.arange(len(values)) / fps
    score, _ = classic_trace(values, valid, t_s, feature_names, config)
    ok = np.asarray(valid, bool) & np.isfinite(score)
    probs = np.broadcast_to(UNIFORM, (len(values), len(EMOTIONS)))  # (L, E)
    return decode_trace(np.nan_to_num(score), probs, fps, ok, config.decoder)
