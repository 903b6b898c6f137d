"""ranking_auc: the validation score's ranking of true micro-expressions, no decoder;
false_moments: false alarms counted once per moment of each validation video."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from engines.models.spotter import targets
from engines.train.data import Clip, TruthInterval
from engines.train.operating import background_minutes, false_moments, ranking_auc

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


def seeded(identity: str, seed: int) -> Clip:
    """A real validation clip of ``identity`` injected at ``seed`` (TRUTH, as val_seeds)."""
    clip = clip_with(TRUTH)
    source = {"background": "real", "injected": True}
    path = Path(f"{identity}_s{seed}.npz")
    return dataclasses.replace(clip, path=path, identity=identity, seed=seed, source=source)


def test_a_false_alarm_repeated_in_every_seed_of_a_video_is_one_moment():
    probs = np.full((900, 3), 1 / 3)
    found = bumps([105, 405, 705])
    traces = [(seeded("v", s), np.maximum(found, bumps([250])), probs) for s in (1, 2, 3)]
    # per clip: 3 false events at the video's 8.3 s; counted per moment: one
    assert false_moments(traces, 0.5) == (1, 9, 9)
    traces.append((seeded("w", 1), np.maximum(found, bumps([250])), probs))  # another video
    traces.append((seeded("v", 4), np.maximum(found, bumps([600])), probs))  # another moment
    assert false_moments(traces, 0.5) == (3, 15, 15)
    assert false_moments(traces, 1.01) == (0, 0, 15)
    # the distinct video under them: v and w once each, 900 frames at 30 fps
    assert background_minutes([c for c, _, _ in traces]) == pytest.approx(2 * 30 / 60)
