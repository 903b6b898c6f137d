"""ranking_auc: the validation score's ranking of true micro-expressions, no decoder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from engines.models.spotter import targets
from engines.train.data import Clip, TruthInterval
from engines.train.operating import ranking_auc

FPS = 30.0


def clip_with(truth: list[tuple[int, int, int]], length: int = 900) -> Clip:
    rows = [TruthInterval(a, b, c, "micro", "") for a, b, c in truth]
    return Clip(
        path=Path("v_s100.npz"),
        identity="v",
        seed=100,
        fps=FPS,
        names=("f",),
        x=torch.zeros(length, 1),
        valid=torch.ones(length, dtype=torch.bool),
        target=targets([(a, b, c) for a, b, c in truth], length),
        truth=rows,
        blinks=0,
    )


TRUTH = [(100, 105, 110), (400, 405, 410), (700, 705, 710)]


def bumps(at: list[int], length: int = 900, height: float = 1.0) -> np.ndarray:
    t = np.arange(length)
    return height * np.max([np.exp(-0.5 * ((t - a) / 3.0) ** 2) for a in at], axis=0)


def test_a_score_that_peaks_on_every_expression_ranks_them_all_first():
    rng = np.random.default_rng(0)
    score = bumps([105, 405, 705]) + rng.uniform(0, 0.3, 900)
    value, positives, negatives = ranking_auc([(clip_with(TRUTH), score, None)])
    assert value == 1.0
    assert positives == 3
    # 0.3-s windows every 0.15 s over the frames at least 0.5 s from any truth
    assert negatives > 100


def test_a_score_that_falls_on_every_expression_ranks_them_last():
    rng = np.random.default_rng(1)
    score = 1.0 - bumps([105, 405, 705], height=0.9) + rng.uniform(0, 0.05, 900)
    assert ranking_auc([(clip_with(TRUTH), score, None)])[0] == 0.0


def test_noise_alone_is_near_chance():
    rng = np.random.default_rng(2)
    clips = [(clip_with(TRUTH), rng.uniform(0, 1, 900), None) for _ in range(30)]
    assert ranking_auc(clips)[0] == pytest.approx(0.5, abs=0.1)


def test_the_frames_near_a_truth_are_not_negatives():
    # a score high around every expression (its onset and offset included) ranks them
    # against the quiet frames only
    score = np.zeros(900)
    for _, apex, _ in TRUTH:
        score[apex - 20 : apex + 21] = 1.0
    value, positives, _ = ranking_auc([(clip_with(TRUTH), score, None)])
    assert (value, positives) == (1.0, 3)
