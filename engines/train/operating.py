"""The node spotter's operating point: one apex-score threshold that means the same on every
face, chosen on validation clips only.

The region-row spotter's running threshold (median + k·MAD of its own recent score) rose and
fell with how much a face blinked or talked (issue 22). The node spotter's input is already
the person's own calm-frame noise (``engines/node_inputs.py``), so its score is compared with
one fixed threshold: the lowest on a grid at which the live decoder raises at most
``target_fa_per_min`` false micro events per minute on the validation identities' real video
(every decided micro-expression that matches no truth is false). The manifest records it with
the false-alarm rate and the recall measured there; ``SpottingStage`` decodes with it
(``engines.decoding.fixed_decoder``: no running level, no baseline floor).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from engines.decoding import decode_trace, fixed_decoder
from engines.eval.metrics import spotting_matches
from engines.models.spotter import Spotter
from engines.train.data import Clip
from engines.train.validation import run_clip

GRID = tuple(np.round(np.geomspace(0.05, 0.95, 30), 4))


def _counts(
    traces: Sequence[tuple[Clip, np.ndarray, np.ndarray]], threshold: float
) -> tuple[int, int, int]:
    """(false micro events, true micro-expressions found, true micro-expressions) of the
    recorded traces decoded at ``threshold``."""
    false, found, total = 0, 0, 0
    for clip, apex, probs in traces:
        decided = decode_trace(apex, probs, clip.fps, clip.valid.numpy(), fixed_decoder(threshold))
        pred = [(d.onset_seq, d.offset_seq) for d in decided if d.kind == "micro"]
        truth = [(t.onset, t.offset) for t in clip.truth if t.kind == "micro"]
        matched = spotting_matches(pred, truth)
        false += len(pred) - len(matched)
        found += len(matched)
        total += len(truth)
    return false, found, total


def choose_operating_point(
    model: Spotter, val_clips: Sequence[Clip], target_fa_per_min: float = 0.5
) -> dict[str, Any]:
    """The lowest grid threshold with at most ``target_fa_per_min`` false micro events per
    minute on the real validation clips (the highest when none qualifies)."""
    real = [c for c in val_clips if c.family == "real"] or list(val_clips)
    minutes = sum(float(c.valid.sum()) / c.fps for c in real) / 60.0
    traces = [(clip, *run_clip(model, clip)) for clip in real]  # the model once per clip
    rows = []
    for threshold in GRID:
        false, found, total = _counts(traces, threshold)
        fa = false / max(minutes, 1e-9)
        rows.append({"threshold": float(threshold), "fa_per_min": round(fa, 3),
                     "recall": round(found / total, 3) if total else None})  # fmt: skip
        if fa <= target_fa_per_min:
            break
    chosen = rows[-1]
    return {
        **chosen,
        "target_fa_per_min": target_fa_per_min,
        "validation_minutes": round(minutes, 2),
        "validation_clips": sorted(str(c.path.name) for c in real),
        "curve": rows,
    }
