"""Detection curves and AUCs against values worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from engines.decoders import decode_trace
from engines.decoding import DecoderConfig
from engines.eval.detection import (
    ScoreTrace,
    Truth,
    auc,
    best_at,
    count_runs,
    decode_scaled,
    detected,
    localised,
    recall_at,
    sweep,
    threshold_curve,
    window_peaks,
)

FPS = 30.0
# mad_k 0 and a zero median: the running level is 0, so the threshold is exactly
# min_threshold × scale and every number below can be worked out by hand.
CONFIG = DecoderConfig(mad_k=0.0, min_threshold=0.5)


def bump(trace: np.ndarray, centre: int, height: float, half: int = 4) -> None:
    """A raised-cosine bump 2·half+1 frames wide (FWHM ≈ half + 1 frames: a micro event)."""
    k = np.arange(-half, half + 1)
    trace[centre + k] = np.maximum(trace[centre + k], height * 0.5 * (1 + np.cos(np.pi * k / half)))


def trace_of(score: np.ndarray) -> ScoreTrace:
    probs = np.tile([0.2, 0.5, 0.3], (len(score), 1))
    return ScoreTrace(score, probs, np.ones(len(score), bool), FPS)


@pytest.fixture
def suite():
    """Injected: one clip of 20 s with bumps of 1, 2 and 3 at 3 s, 8 s, 13 s (truth on all
    three, apex at the bump's centre). Plain: one clip of 60 s with bumps of 1.2 and 2.6."""
    injected = np.zeros(int(20 * FPS))
    truth = []
    for centre_s, height in ((3, 1.0), (8, 2.0), (13, 3.0)):
        c = int(centre_s * FPS)
        bump(injected, c, height)
        truth.append(Truth(c - 4, c, c + 4))
    plain = np.zeros(int(60 * FPS))
    bump(plain, int(10 * FPS), 1.2)
    bump(plain, int(40 * FPS), 2.6)
    return trace_of(injected), truth, trace_of(plain)


def test_sweep_on_a_hand_made_trace(suite):
    injected, truth, plain = suite
    points = sweep([(injected, truth)], [plain], CONFIG, scales=(1.0, 3.0, 5.0, 7.0))
    # threshold 0.5: every bump; 1.5: bumps ≥ 2 (2, 3 | 2.6); 2.5: bump 3 | 2.6; 3.5: none
    assert [p.detected.tolist() for p in points] == [
        [True, True, True],
        [False, True, True],
        [False, False, True],
        [False, False, False],
    ]
    assert [p.false_per_min for p in points] == [2.0, 1.0, 1.0, 0.0]  # per minute of plain
    # recall at ≤ 0.5 / 1 / 2 / 5 false per minute: the best quiet enough point
    assert recall_at(points) == pytest.approx([0.0, 2 / 3, 1.0, 1.0])
    assert best_at(points, 1.0).scale == 3.0
    assert points[0].recall(mask=np.array([True, False, False])) == 1.0


def test_scale_one_is_the_plain_decoder(suite):
    injected, _, _ = suite
    mine = decode_scaled(injected, CONFIG, 1.0)
    theirs = decode_trace(injected.score, injected.emotion_probs, FPS, config=CONFIG)
    assert [(s.onset_seq, s.apex_seq, s.offset_seq) for s in mine] == [
        (s.onset_seq, s.apex_seq, s.offset_seq) for s in theirs
    ]
    assert len(mine) == 3 and all(s.kind == "micro" for s in mine)


def test_the_baseline_floor_applies_from_its_frame(suite):
    injected, truth, _ = suite
    # a floor of 2.5 from frame 200 (6.7 s): bump 1 at 3 s came before it and passes; bump 2
    # (height 2) is under the floor; bump 3 (height 3) is over it
    floored = ScoreTrace(injected.score, injected.emotion_probs, injected.valid, FPS, 200, 2.5)
    assert detected(decode_scaled(floored, CONFIG), truth).tolist() == [True, False, True]


def test_detection_is_told_apart_from_localisation():
    from engines.decoding import Spotted

    def spotted(onset: int, offset: int) -> Spotted:
        return Spotted("micro", onset, onset, offset, 0, 0, 0, 1.0, {}, "positive", 0, 0, 0)

    truth = [Truth(100, 105, 110)]
    # contains the apex but far too long: detected, not localised (IoU 11/40)
    assert detected([spotted(80, 119)], truth).tolist() == [True]
    assert localised([spotted(80, 119)], truth).tolist() == [False]
    assert localised([spotted(101, 111)], truth).tolist() == [True]
    assert detected([spotted(106, 120)], truth).tolist() == [False]


@pytest.mark.parametrize(
    ("pos", "neg", "expected"),
    [
        ([1, 2, 3], [0, 0], 1.0),  # every positive above every negative
        ([0, 0], [1, 2], 0.0),  # every positive below
        ([1, 1], [1, 1], 0.5),  # all ties count half
        ([1, 3], [2], 0.5),  # one above, one below
        ([2], [1, 2, 3], 0.5),  # one below, one tie, one above: (1 + 0.5) / 3
    ],
)
def test_auc_by_hand(pos, neg, expected):
    assert auc(pos, neg) == pytest.approx(expected)


def test_auc_of_two_gaussians_is_the_known_value():
    # X ~ N(d, 1), Y ~ N(0, 1): AUC = Φ(d / √2); d = 1 → 0.7602
    rng = np.random.default_rng(0)
    value = auc(rng.normal(1.0, 1.0, 20000), rng.normal(0.0, 1.0, 20000))
    assert value == pytest.approx(0.7602, abs=0.01)


def test_window_peaks_skip_windows_without_a_face():
    signal = np.arange(10.0)
    valid = np.ones(10, bool)
    valid[5] = False
    # windows of 3 every 2 frames: [0..2] [2..4] [4..6]x [6..8]
    assert window_peaks(signal, valid, 3, 2).tolist() == [2.0, 4.0, 8.0]


def test_runs_and_the_threshold_curve():
    above = np.array([0, 1, 1, 0, 1, 0, 0, 0, 0, 1], bool)
    assert count_runs(above, np.ones(10, bool), merge=1) == 3
    assert count_runs(above, np.ones(10, bool), merge=2) == 2  # 2 and 4 merge
    # a run longer than `longest` counts once per that length: 10 frames above, pieces of 4
    assert count_runs(np.ones(10, bool), np.ones(10, bool), merge=1, longest=4) == 3
    plain = np.zeros(600)  # 20 s at 30 fps
    plain[100:105] = 2.0
    points = threshold_curve(np.array([1.0, 3.0, np.nan]), [(plain, np.ones(600, bool), 30.0)])
    # threshold 1: both events' peaks reach it, and so does the plain run (2.0): 1 per 20 s
    assert [(p.threshold, p.detected.tolist(), p.false_per_min) for p in points] == [
        (1.0, [True, True, False], 3.0),
        (3.0, [False, True, False], 0.0),
    ]
