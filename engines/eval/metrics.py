"""MEGC evaluation: interval spotting F1 (IoU ≥ 0.5), recognition UF1 / UAR, and STRS.

Spotting (MEGC 2019–2023 protocol):
- Intervals are inclusive frame ranges (onset, offset); IoU = |P ∩ T| / |P ∪ T| in frames.
- A prediction and a truth may match when IoU ≥ `iou` (0.5). Each truth matches at most one
  prediction and vice versa. TP is the size of a MAXIMUM such one-to-one matching (augmenting
  paths, Kuhn's algorithm), not a greedy one: greedy-by-IoU can undercount when one prediction
  overlaps two truths, and its result can depend on tie order, while the maximum is unique, so
  swapping predictions and truths swaps P and R exactly. FP = #pred - TP, FN = #truth - TP.
- TP, FP and FN are summed over all videos BEFORE precision, recall and F1 (MEGC), so a video
  with many expressions weighs more than an empty one.
- Zero division: P = 0 when nothing is predicted, R = 0 when nothing is true, F1 = 0 when
  P + R = 0. An empty prediction on an empty truth therefore scores F1 = 0, as MEGC reports.
- By kind (`spotting_report`): micro and macro are matched separately (a prediction labelled
  micro never matches a macro truth), and "overall" sums the two kinds' counts (MEGC 2022).

Recognition: UF1 and UAR are unweighted means over the classes present in y_true of per-class
F1 and recall (so a rare class counts as much as a frequent one); pass the predictions pooled
over all leave-one-subject-out folds, as MEGC does.

STRS (MEGC 2023 spot-then-recognize score) = spotting F1 × analysis F1, where the analysis F1
is the UF1 of the emotions of the correctly spotted (TP) intervals: `spotting_matches` gives
those pairs.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

from engines.labels import KINDS

Span = tuple[int, int]  # (onset, offset), inclusive frame indices


def interval_iou(a: Span, b: Span) -> float:
    """IoU of two inclusive frame intervals; 0.0 when they do not overlap."""
    inter = min(a[1], b[1]) - max(a[0], b[0]) + 1
    if inter <= 0:
        return 0.0
    union = (a[1] - a[0] + 1) + (b[1] - b[0] + 1) - inter
    return inter / union


def spotting_matches(pred: Sequence[Span], truth: Sequence[Span], iou: float = 0.5) -> list[Span]:
    """A maximum one-to-one matching of predictions to truths with IoU ≥ iou.

    Returns (pred_index, truth_index) pairs sorted by pred_index. Kuhn's augmenting paths:
    O(#pred · #edges), trivial at a few dozen intervals per video.
    """
    for span in (*pred, *truth):
        if span[1] < span[0]:
            raise ValueError(f"interval with offset before onset: {span}")
    # Candidate truths per prediction, best IoU first, so ties in size prefer tight matches.
    edges = []
    for p in pred:
        scored = [(interval_iou(p, t), j) for j, t in enumerate(truth)]
        edges.append([j for score, j in sorted(scored, key=lambda s: -s[0]) if score >= iou])
    truth_owner: list[int | None] = [None] * len(truth)

    def augment(i: int, seen: list[bool]) -> bool:
        for j in edges[i]:
            if seen[j]:
                continue
            seen[j] = True
            owner = truth_owner[j]
            if owner is None or augment(owner, seen):
                truth_owner[j] = i
                return True
        return False

    for i in range(len(pred)):
        augment(i, [False] * len(truth))
    return sorted((i, j) for j, i in enumerate(truth_owner) if i is not None)


def spotting_counts(
    pred: Sequence[Span], truth: Sequence[Span], iou: float = 0.5
) -> tuple[int, int, int]:
    """(TP, FP, FN) of one video under the one-to-one IoU ≥ iou matching."""
    tp = len(spotting_matches(pred, truth, iou))
    return tp, len(pred) - tp, len(truth) - tp


def _prf(tp: int, fp: int, fn: int) -> dict[str, float]:
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "tp": tp, "fp": fp, "fn": fn}


def spotting_f1(
    per_video: Sequence[tuple[Sequence[Span], Sequence[Span]]], iou: float = 0.5
) -> dict[str, float]:
    """MEGC spotting score over videos given as (pred, truth) pairs.

    Returns {"precision", "recall", "f1", "tp", "fp", "fn"} from counts summed over videos.

    Example:
        >>> spotting_f1([([(10, 20)], [(11, 20)]), ([(5, 9)], [])])["f1"]
        0.6666666666666666
    """
    tp = fp = fn = 0
    for pred, truth in per_video:
        v_tp, v_fp, v_fn = spotting_counts(pred, truth, iou)
        tp, fp, fn = tp + v_tp, fp + v_fp, fn + v_fn
    return _prf(tp, fp, fn)


@dataclass(frozen=True)
class VideoIntervals:
    """Predicted and true intervals of one video, each with its kind ("micro" | "macro")."""

    pred: Sequence[tuple[int, int, str]]  # (onset, offset, kind)
    truth: Sequence[tuple[int, int, str]]  # (onset, offset, kind)


def spotting_report(
    videos: Sequence[VideoIntervals], iou: float = 0.5
) -> dict[str, dict[str, float]]:
    """Spotting scores by kind: {"micro": {...}, "macro": {...}, "overall": {...}}.

    Each kind is matched on its own; "overall" sums the micro and macro counts (MEGC 2022).
    """
    counts = {kind: [0, 0, 0] for kind in KINDS}
    for video in videos:
        for side in (video.pred, video.truth):
            unknown = {k for _, _, k in side} - set(KINDS)
            if unknown:
                raise ValueError(f"unknown kind(s) {sorted(unknown)}; expected one of {KINDS}")
        for kind in KINDS:
            pred = [(a, b) for a, b, k in video.pred if k == kind]
            truth = [(a, b) for a, b, k in video.truth if k == kind]
            for n, c in enumerate(spotting_counts(pred, truth, iou)):
                counts[kind][n] += c
    report = {kind: _prf(*counts[kind]) for kind in KINDS}
    overall = [sum(counts[kind][n] for kind in KINDS) for n in range(3)]
    report["overall"] = _prf(*overall)
    return report


def _per_class(
    y_true: Sequence[Hashable], y_pred: Sequence[Hashable], classes: Sequence[Hashable] | None
) -> list[tuple[int, int, int]]:
    # (TP, FP, FN) for each class present in y_true, in `classes` order when given.
    if len(y_true) != len(y_pred):
        raise ValueError(f"y_true has {len(y_true)} labels, y_pred {len(y_pred)}")
    if classes is not None:
        unknown = (set(y_true) | set(y_pred)) - set(classes)
        if unknown:
            raise ValueError(f"labels {sorted(map(str, unknown))} are not in classes {classes}")
        present = [c for c in classes if c in set(y_true)]
    else:
        present = sorted(set(y_true), key=str)
    rows = []
    for c in present:
        tp = sum(t == c and p == c for t, p in zip(y_true, y_pred, strict=True))
        fp = sum(t != c and p == c for t, p in zip(y_true, y_pred, strict=True))
        fn = sum(t == c and p != c for t, p in zip(y_true, y_pred, strict=True))
        rows.append((tp, fp, fn))
    return rows


def uf1(
    y_true: Sequence[Hashable],
    y_pred: Sequence[Hashable],
    classes: Sequence[Hashable] | None = None,
) -> float:
    """Unweighted F1: mean over classes present in y_true of 2TP / (2TP + FP + FN).

    `classes`, when given, is the label set: a label outside it raises ValueError. 0.0 when
    y_true is empty.
    """
    rows = _per_class(y_true, y_pred, classes)
    return sum(2 * tp / (2 * tp + fp + fn) for tp, fp, fn in rows) / len(rows) if rows else 0.0


def uar(
    y_true: Sequence[Hashable],
    y_pred: Sequence[Hashable],
    classes: Sequence[Hashable] | None = None,
) -> float:
    """Unweighted average recall: mean over classes present in y_true of TP / (TP + FN)."""
    rows = _per_class(y_true, y_pred, classes)
    return sum(tp / (tp + fn) for tp, _, fn in rows) / len(rows) if rows else 0.0


def strs(spot_f1: float, rec_f1: float) -> float:
    """MEGC 2023 STRS = spotting F1 × analysis F1 (the UF1 of emotions on TP intervals)."""
    for name, value in (("spot_f1", spot_f1), ("rec_f1", rec_f1)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {value}")
    return spot_f1 * rec_f1
