"""Baseline from a neutral stretch: robust to a blink, scales with the person's noise."""

from __future__ import annotations

import numpy as np
import pytest

from calibration.baseline import Baseline, robust_level


def test_floor_follows_the_noise_and_ignores_a_short_burst():
    rng = np.random.default_rng(0)
    scores = np.abs(rng.normal(0, 0.05, 150))
    mags = np.abs(rng.normal(0, [0.05, 0.2], (150, 2)))
    quiet = Baseline.from_neutral(mags, scores)
    burst_scores = scores.copy()
    burst_scores[60:66] = 0.9  # a blink during calibration
    with_burst = Baseline.from_neutral(mags, burst_scores)
    assert with_burst.score_floor == pytest.approx(quiet.score_floor, rel=0.15)
    assert quiet.roi_noise[1] > 3 * quiet.roi_noise[0]  # the noisier region gets a higher floor
    assert quiet.n_frames == 150


def test_a_face_that_moved_throughout_gets_a_capped_floor():
    rng = np.random.default_rng(2)
    talking = np.abs(rng.normal(2.0, 1.0, 90))  # scores of a face talking all through
    mags = np.abs(rng.normal(0, 0.1, (90, 2)))
    baseline = Baseline.from_neutral(mags, talking, max_floor=0.6)
    assert baseline.measured_floor > 3.0 and baseline.score_floor == 0.6
    assert baseline.floor_capped
    still = Baseline.from_neutral(mags, np.abs(rng.normal(0, 0.02, 90)), max_floor=0.6)
    assert not still.floor_capped and still.score_floor == still.measured_floor < 0.6


def test_invalid_frames_are_ignored_and_too_few_refused():
    scores = np.full(40, 0.1)
    mags = np.zeros((40, 3))
    valid = np.zeros(40, bool)
    valid[:10] = True
    with pytest.raises(ValueError, match="valid neutral frames"):
        Baseline.from_neutral(mags, scores, valid)


def test_robust_level_of_a_gaussian():
    values = np.random.default_rng(1).normal(1.0, 0.1, (20000, 1))
    assert robust_level(values, 3.0)[0] == pytest.approx(1.3, abs=0.01)  # median + 3σ
