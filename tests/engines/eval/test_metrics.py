"""MEGC metrics against hand-worked examples, plus properties checked with hypothesis."""

from __future__ import annotations

from itertools import combinations, permutations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engines.eval.metrics import (
    VideoIntervals,
    interval_iou,
    spotting_counts,
    spotting_f1,
    spotting_matches,
    spotting_report,
    strs,
    uar,
    uf1,
)
from engines.labels import EMOTIONS


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ((10, 29), (14, 29), 16 / 20),  # inclusive: 14..29 is 16 frames, 10..29 is 20
        ((100, 109), (100, 104), 5 / 10),  # exactly the MEGC threshold
        ((50, 69), (50, 57), 8 / 20),  # 0.4: below it
        ((5, 5), (5, 5), 1.0),  # one-frame intervals
        ((0, 9), (10, 19), 0.0),  # adjacent, no shared frame
        ((0, 9), (9, 19), 1 / 20),  # one shared frame
    ],
)
def test_interval_iou(a, b, expected):
    assert interval_iou(a, b) == pytest.approx(expected)
    assert interval_iou(b, a) == pytest.approx(expected)


# Three videos, four truths, six predictions, worked by hand:
#   video A: truths (10,29), (100,109)
#            (14,29)   IoU 16/20 = 0.8 with (10,29)    → TP
#            (100,104) IoU 5/10  = 0.5 with (100,109)  → TP (IoU ≥ 0.5 counts)
#            (200,210) overlaps nothing                 → FP          A: TP 2, FP 1, FN 0
#   video B: truth (50,69)
#            (58,69) IoU 12/20 = 0.6, (52,69) IoU 18/20 = 0.9: both could match, one may
#            (50,57) IoU 8/20 = 0.4                      → FP          B: TP 1, FP 2, FN 0
#   video C: truth (0,9), no prediction                                C: TP 0, FP 0, FN 1
#   summed:  TP 3, FP 3, FN 1 → P = 3/6 = 0.5, R = 3/4 = 0.75, F1 = 2·0.5·0.75/1.25 = 0.6
#   (the mean of per-video F1s would be (0.8 + 0.5 + 0) / 3 ≈ 0.433: MEGC sums first)
VIDEOS = [
    ([(14, 29), (100, 104), (200, 210)], [(10, 29), (100, 109)]),
    ([(58, 69), (50, 57), (52, 69)], [(50, 69)]),
    ([], [(0, 9)]),
]


def test_counts_per_video_by_hand():
    assert [spotting_counts(p, t) for p, t in VIDEOS] == [(2, 1, 0), (1, 2, 0), (0, 0, 1)]


def test_spotting_f1_sums_counts_before_f1():
    score = spotting_f1(VIDEOS)
    assert (score["tp"], score["fp"], score["fn"]) == (3, 3, 1)
    assert score["precision"] == pytest.approx(0.5)
    assert score["recall"] == pytest.approx(0.75)
    assert score["f1"] == pytest.approx(0.6)


def test_iou_threshold_is_a_parameter():
    # At IoU ≥ 0.7 only (14,29)/0.8 and (52,69)/0.9 survive: TP 2, FP 4, FN 2.
    score = spotting_f1(VIDEOS, iou=0.7)
    assert (score["tp"], score["fp"], score["fn"]) == (2, 4, 2)
    assert score["f1"] == pytest.approx(2 * (2 / 6) * (2 / 4) / (2 / 6 + 2 / 4))  # 0.4


def test_matching_is_one_to_one_and_maximum():
    # Truths X = (0,19) and Y = (0,9) overlap (a micro inside a macro, say).
    #   pred A = (0,14): IoU 15/20 = 0.75 with X, 10/15 ≈ 0.667 with Y
    #   pred B = (6,19): IoU 14/20 = 0.70 with X,  4/20 = 0.2   with Y
    # Greedy by IoU takes A–X first and then neither B nor Y can match (TP 1);
    # the maximum matching is A–Y, B–X (TP 2).
    pred, truth = [(0, 14), (6, 19)], [(0, 19), (0, 9)]
    assert spotting_matches(pred, truth) == [(0, 1), (1, 0)]
    assert spotting_counts(pred, truth) == (2, 0, 0)
    # Two predictions on one truth: one TP, one FP; one prediction on two truths: one TP.
    assert spotting_counts([(10, 20), (10, 20)], [(10, 20)]) == (1, 1, 0)
    assert spotting_counts([(10, 20)], [(10, 20), (10, 20)]) == (1, 0, 1)


def test_zero_division_conventions():
    empty = spotting_f1([([], []), ([], [])])
    assert empty == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "tp": 0, "fp": 0, "fn": 0}
    only_fp = spotting_f1([([(1, 5)], [])])
    assert (only_fp["precision"], only_fp["recall"], only_fp["f1"]) == (0.0, 0.0, 0.0)
    with pytest.raises(ValueError):
        spotting_counts([(9, 3)], [])  # offset before onset


def test_spotting_report_by_kind():
    # video 1: macro truth (10,29) ← macro pred (12,29), IoU 18/20 = 0.9   → macro TP
    #          micro truth (40,45) ← micro pred (40,44), IoU 5/6 ≈ 0.83    → micro TP
    #          macro pred (100,130) matches nothing                       → macro FP
    # video 2: micro truth (5,9) vs a MACRO pred (5,9): kinds differ      → macro FP, micro FN
    # micro:   TP 1, FP 0, FN 1 → P 1,   R 0.5, F1 = 2·1·0.5/1.5 = 2/3
    # macro:   TP 1, FP 2, FN 0 → P 1/3, R 1,   F1 = 2·(1/3)/(4/3) = 0.5
    # overall: TP 2, FP 2, FN 1 → P 0.5, R 2/3, F1 = (2/3)/(7/6) = 4/7
    videos = [
        VideoIntervals(
            pred=[(12, 29, "macro"), (40, 44, "micro"), (100, 130, "macro")],
            truth=[(10, 29, "macro"), (40, 45, "micro")],
        ),
        VideoIntervals(pred=[(5, 9, "macro")], truth=[(5, 9, "micro")]),
    ]
    report = spotting_report(videos)
    assert (report["micro"]["tp"], report["micro"]["fp"], report["micro"]["fn"]) == (1, 0, 1)
    assert (report["macro"]["tp"], report["macro"]["fp"], report["macro"]["fn"]) == (1, 2, 0)
    assert (report["overall"]["tp"], report["overall"]["fp"], report["overall"]["fn"]) == (2, 2, 1)
    assert report["micro"]["f1"] == pytest.approx(2 / 3)
    assert report["macro"]["f1"] == pytest.approx(0.5)
    assert report["overall"]["f1"] == pytest.approx(4 / 7)
    with pytest.raises(ValueError, match="unknown kind"):
        spotting_report([VideoIntervals(pred=[(1, 2, "mega")], truth=[])])


# y_true: neg neg neg pos pos sur      y_pred: neg neg pos pos sur sur
#   negative: TP 2, FP 0, FN 1 → F1 = 4/5 = 0.8,   recall 2/3
#   positive: TP 1, FP 1, FN 1 → F1 = 2/4 = 0.5,   recall 1/2
#   surprise: TP 1, FP 1, FN 0 → F1 = 2/3,         recall 1
#   UF1 = (0.8 + 0.5 + 2/3) / 3 ≈ 0.6556,   UAR = (2/3 + 1/2 + 1) / 3 ≈ 0.7222
Y_TRUE = ["negative"] * 3 + ["positive"] * 2 + ["surprise"]
Y_PRED = ["negative", "negative", "positive", "positive", "surprise", "surprise"]


def test_uf1_and_uar_by_hand():
    assert uf1(Y_TRUE, Y_PRED, EMOTIONS) == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    assert uar(Y_TRUE, Y_PRED, EMOTIONS) == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)
    assert uf1(Y_TRUE, Y_PRED) == uf1(Y_TRUE, Y_PRED, EMOTIONS)  # classes inferred


def test_classes_absent_from_truth_are_not_averaged():
    # "surprise" is only predicted: it costs "negative" a TP but is not a class of its own.
    #   negative: TP 1, FN 1 → F1 2/3, recall 1/2;  positive: TP 1 → F1 1, recall 1
    y_true, y_pred = ["negative", "negative", "positive"], ["negative", "surprise", "positive"]
    assert uf1(y_true, y_pred, EMOTIONS) == pytest.approx((2 / 3 + 1) / 2)
    assert uar(y_true, y_pred, EMOTIONS) == pytest.approx((1 / 2 + 1) / 2)
    with pytest.raises(ValueError, match="not in classes"):
        uf1(y_true, ["negative", "anger", "positive"], EMOTIONS)
    with pytest.raises(ValueError):
        uar(y_true, y_pred[:2])
    assert uf1([], []) == 0.0 and uar([], []) == 0.0


def test_strs_is_the_product():
    assert strs(0.6, (0.8 + 0.5 + 2 / 3) / 3) == pytest.approx(0.6 * 0.65556, abs=1e-5)
    assert strs(1.0, 0.0) == 0.0
    with pytest.raises(ValueError):
        strs(1.2, 0.5)


# --- properties -------------------------------------------------------------------------------

span = st.tuples(st.integers(0, 60), st.integers(0, 15)).map(lambda s: (s[0], s[0] + s[1]))
video = st.tuples(st.lists(span, max_size=5), st.lists(span, max_size=5))


@settings(max_examples=200, deadline=None)
@given(st.lists(video, max_size=4))
def test_scores_are_bounded_and_counts_add_up(videos):
    score = spotting_f1(videos)
    assert 0.0 <= score["precision"] <= 1.0
    assert 0.0 <= score["recall"] <= 1.0
    assert 0.0 <= score["f1"] <= 1.0
    assert score["tp"] + score["fp"] == sum(len(p) for p, _ in videos)
    assert score["tp"] + score["fn"] == sum(len(t) for _, t in videos)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(span, max_size=5), min_size=1, max_size=4))
def test_perfect_predictions_score_one(truths):
    if not any(truths):
        truths = [*truths, [(3, 7)]]
    score = spotting_f1([(list(t), t) for t in truths])
    assert score["f1"] == score["precision"] == score["recall"] == 1.0


@settings(max_examples=200, deadline=None)
@given(st.lists(video, max_size=4))
def test_swapping_pred_and_truth_swaps_precision_and_recall(videos):
    score = spotting_f1(videos)
    swapped = spotting_f1([(t, p) for p, t in videos])
    assert swapped["precision"] == pytest.approx(score["recall"])
    assert swapped["recall"] == pytest.approx(score["precision"])
    assert swapped["f1"] == pytest.approx(score["f1"])


def _brute_force_tp(pred, truth, iou=0.5):
    # Largest k such that some k predictions pair one-to-one with k truths at IoU ≥ iou.
    for k in range(min(len(pred), len(truth)), 0, -1):
        for ps in combinations(range(len(pred)), k):
            for ts in permutations(range(len(truth)), k):
                if all(interval_iou(pred[i], truth[j]) >= iou for i, j in zip(ps, ts, strict=True)):
                    return k
    return 0


@settings(max_examples=150, deadline=None)
@given(video)
def test_matching_is_maximum_one_to_one(pair):
    pred, truth = pair
    matches = spotting_matches(pred, truth)
    assert len({i for i, _ in matches}) == len({j for _, j in matches}) == len(matches)
    assert all(interval_iou(pred[i], truth[j]) >= 0.5 for i, j in matches)
    assert len(matches) == _brute_force_tp(pred, truth)
