"""Validation of a spotter on whole clips, decoded by the live decoder and scored by MEGC.

Each clip runs whole, per valid stretch (the live path resets the model state at a gap); its
apex score and emotion probabilities go through ``engines.decoding.EventDecoder`` frame by
frame (``decode_trace``: running threshold, fixed look-ahead, its defaults ``DecoderConfig``),
so validation picks an epoch by the intervals the live path would emit. Not applied here: the
person's baseline floor that the live stage measures in its first seconds
(``calibration/baseline.py``); ``benchmarks/bench_spotting.py`` replays the whole live stage.
Scores: MEGC spotting F1 (IoU ≥ 0.5, counts summed over clips) and emotion UF1/UAR on the
matched micro-expressions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from engines.decoders import decode_trace
from engines.decoding import DecoderConfig, Spotted
from engines.eval.metrics import VideoIntervals, spotting_matches, spotting_report, uar, uf1
from engines.labels import EMOTIONS
from engines.models.spotter import Spotter, loss_terms
from engines.train.data import Clip, valid_runs


@torch.no_grad()
def run_clip(model: Spotter, clip: Clip) -> tuple[np.ndarray, np.ndarray]:
    """Apex score (L,) and emotion probabilities (L, 3) of a whole clip, the state reset at
    every gap as the live path does (NaN / zero on invalid rows)."""
    length = clip.length
    apex = np.full(length, np.nan, np.float32)
    probs = np.zeros((length, len(EMOTIONS)), np.float32)
    for start, stop in valid_runs(clip.valid):
        out, _ = model(clip.x[None, start:stop])  # (1, n) heads
        apex[start:stop] = out.apex[0].numpy()
        probs[start:stop] = torch.softmax(out.emotion_logits[0], -1).numpy()
    return apex, probs


@torch.no_grad()
def decode_clips(
    model: Spotter, clips: Sequence[Clip], decoder: DecoderConfig | None = None
) -> list[tuple[Clip, list[Spotted]]]:
    """Each clip through the model and the live decoder: (clip, decided intervals)."""
    decoded = []
    for clip in clips:
        apex, probs = run_clip(model, clip)
        decoded.append((clip, decode_trace(apex, probs, clip.fps, clip.valid.numpy(), decoder)))
    return decoded


def score_intervals(
    per_clip: Sequence[tuple[Clip, list[Spotted]]],
) -> dict[str, Any]:
    """MEGC spotting report + emotion UF1/UAR on the matched micro-expressions."""
    videos, y_true, y_pred = [], [], []
    for clip, decoded in per_clip:
        pred = [(d.onset_seq, d.offset_seq, d.kind) for d in decoded]
        truth = [(t.onset, t.offset, t.kind) for t in clip.truth]
        videos.append(VideoIntervals(pred, truth))
        micro_pred = [d for d in decoded if d.kind == "micro"]
        micro_truth = [t for t in clip.truth if t.kind == "micro"]
        pairs = spotting_matches(
            [(d.onset_seq, d.offset_seq) for d in micro_pred],
            [(t.onset, t.offset) for t in micro_truth],
        )
        for i, j in pairs:
            if micro_truth[j].emotion in EMOTIONS:
                y_true.append(micro_truth[j].emotion)
                y_pred.append(micro_pred[i].emotion)
    report = spotting_report(videos)
    return {
        "micro_f1": report["micro"]["f1"],
        "macro_f1": report["macro"]["f1"],
        "overall_f1": report["overall"]["f1"],
        "overall_precision": report["overall"]["precision"],
        "overall_recall": report["overall"]["recall"],
        "counts": {k: {c: report[k][c] for c in ("tp", "fp", "fn")} for k in report},
        "micro_emotion_uf1": uf1(y_true, y_pred, EMOTIONS),
        "micro_emotion_uar": uar(y_true, y_pred, EMOTIONS),
        "micro_emotion_n": len(y_true),
    }


@torch.no_grad()
def evaluate(model: Spotter, clips: Sequence[Clip]) -> dict[str, Any]:
    """Validation loss (masked, per frame) and live-decoded spotting scores."""
    model.eval()
    total, frames = 0.0, 0
    for clip in clips:
        for start, stop in valid_runs(clip.valid):
            out, _ = model(clip.x[None, start:stop])
            t = clip.target
            mask = torch.ones(1, stop - start, dtype=torch.bool)
            terms = loss_terms(
                out,
                t.apex[None, start:stop],
                t.kind[None, start:stop],
                t.emotion[None, start:stop],
                mask,
            )
            total += float(terms.total) * (stop - start)
            frames += stop - start
    metrics = score_intervals(decode_clips(model, clips))
    metrics["loss"] = total / max(frames, 1)
    return metrics
