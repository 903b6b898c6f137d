"""Leave-one-subject-out (LOSO): the protocol of the micro-expression literature.

    python -m engines.train --features DIR --loso [--epochs N] [--loso-out loso.json]

For every subject (identity) in turn: a spotter is trained on all other subjects' clips, with
no validation split (nothing about the held-out subject may choose an epoch or a threshold:
the last epoch is kept), and the held-out subject's clips are decoded by the live decoder
(``engines.train.validation``). TP/FP/FN are summed over all held-out clips before
precision/recall/F1 (MEGC), and emotion UF1/UAR pool the matched micro-expressions of every
fold. Prints a table, one row per subject and one for all, and, when the clips carry the
learned spotter's motion input (``engines/inputs.py``), the training-free classic's pooled row
decoded from the same clips' ``classic_score`` channel: the learned model must beat it.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from engines.errors import DataError
from engines.train.data import Clip
from engines.train.loop import TrainConfig, train
from engines.train.validation import decode_clips, score_intervals


def subject_of(identity: str) -> str:
    """The person behind an identity: a frame of a video (``st_rd2.mp4@1.5``) is the person
    of that video (``st_rd2.mp4``), so a fold holds out every clip of them, synthetic and real.
    """
    return identity.rsplit("@", 1)[0] if "@" in identity else identity


def loso(
    clips: Sequence[Clip], cfg: TrainConfig, log: Callable[[str], None] = print
) -> dict[str, Any]:
    """Train/test every fold; returns per-subject and pooled metrics."""
    subjects = sorted({subject_of(c.identity) for c in clips})
    if len(subjects) < 2:
        raise DataError(f"LOSO needs at least 2 subjects, found {subjects}")
    pooled, folds = [], {}
    for k, subject in enumerate(subjects, 1):
        train_clips = [c for c in clips if subject_of(c.identity) != subject]
        test_clips = [c for c in clips if subject_of(c.identity) == subject]
        log(
            f"fold {k}/{len(subjects)}: test {subject} ({len(test_clips)} clips), "
            f"train {len(train_clips)} clips"
        )
        t0 = time.perf_counter()
        # Last epoch, no validation: picking the best epoch would need data, and the held-out
        # subject is not ours to look at.
        model, _ = train(train_clips, [], dataclasses.replace(cfg), log=lambda s: None)
        decoded = decode_clips(model, test_clips)
        folds[subject] = score_intervals(decoded)
        folds[subject]["train_s"] = round(time.perf_counter() - t0, 1)
        pooled += decoded
        log(
            f"  {subject}: overall F1 {folds[subject]['overall_f1']:.3f} "
            f"({folds[subject]['train_s']:.0f} s)"
        )
    result = {"folds": folds, "all": score_intervals(pooled), "subjects": subjects}
    if clips and clips[0].names and clips[0].names[-2] == "classic_score":
        result["classic"] = score_intervals([(c, classic_from_input(c)) for c in clips])
    return result


def classic_from_input(clip: Clip) -> list:
    """The classic's intervals of a clip, from its input's ``classic_score`` channel (the
    score the classic spotter computes live, frame by frame)."""
    from engines.classic import UNIFORM, classic_decoder
    from engines.decoders import decode_trace

    score = clip.x[:, -2].numpy().astype(np.float64)  # (L,)
    probs = np.broadcast_to(UNIFORM, (clip.length, len(UNIFORM)))  # (L, E)
    return decode_trace(score, probs, clip.fps, clip.valid.numpy(), classic_decoder())


def table(result: dict[str, Any]) -> str:
    """Markdown: a row per held-out subject and one pooled over all folds."""
    cols = (
        "held-out subject",
        "micro F1",
        "macro F1",
        "overall F1",
        "TP/FP/FN",
        "micro UF1",
        "micro UAR",
    )
    lines = ["| " + " | ".join(cols) + " |", "|---|" + "---:|" * (len(cols) - 1)]
    rows = [*result["folds"].items(), ("all (pooled)", result["all"])]
    if "classic" in result:
        rows.append(("classic, training-free (pooled)", result["classic"]))
    for name, m in rows:
        c = m["counts"]["overall"]
        lines.append(
            f"| {name} | {m['micro_f1']:.3f} | {m['macro_f1']:.3f} | {m['overall_f1']:.3f} | "
            f"{c['tp']}/{c['fp']}/{c['fn']} | {m['micro_emotion_uf1']:.3f} | "
            f"{m['micro_emotion_uar']:.3f} |"
        )
    return "\n".join(lines)


def write_json(result: dict[str, Any], path: str | Path) -> None:
    Path(path).write_text(json.dumps(result, indent=1, default=float) + "\n")
