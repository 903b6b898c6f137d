"""The decoders by name: ``new_decoder`` builds the one a ``DecoderConfig`` names (the
half-maximum ``EventDecoder`` of ``engines.decoding`` or the local-maximum ``PeakDecoder`` of
``engines.peaks``), and ``decode_trace`` runs a recorded trace through it frame by frame."""

from __future__ import annotations

import numpy as np

from engines.decoding import DecoderConfig, EventDecoder, Spotted
from engines.peaks import PeakDecoder


def new_decoder(config: DecoderConfig | None = None, baseline_floor: float = 0.0) -> EventDecoder:
    """The decoder ``config`` names: local maxima (``peak_s`` > 0) or half maxima."""
    if config is not None and config.peak_s > 0:
        return PeakDecoder(config, baseline_floor)
    return EventDecoder(config, baseline_floor)


def decode_trace(
    apex_score: np.ndarray,
    emotion_probs: np.ndarray,
    fps: float,
    valid: np.ndarray | None = None,
    config: DecoderConfig | None = None,
    baseline_floor: float = 0.0,
) -> list[Spotted]:
    """A recorded trace through the streaming decoder, one frame at a time as live: frame i at
    ``i / fps`` s; what is still open at the end is decided there. Used where a whole clip's
    scores are at hand (validation, LOSO, the privacy attack), so they decode like the live path.

    Args:
        apex_score: (L,) apex score; NaN rows count as invalid.
        emotion_probs: (L, 3) emotion probabilities over ``EMOTIONS``.
        valid: (L,) bool, default all valid; an invalid row is a gap.
    """
    decoder, decided = new_decoder(config, baseline_floor), []
    ok = np.ones(len(apex_score), bool) if valid is None else np.asarray(valid, bool)
    for i in range(len(apex_score)):
        t_s = i / fps
        score, probs = float(apex_score[i]), emotion_probs[i]
        decided += decoder.update(i, t_s, round(t_s * 1e9), score, probs, bool(ok[i]))
    return decided + decoder.reset()
