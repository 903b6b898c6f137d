"""Causal discovery over region motion: the driver is found, gaps respected, fallbacks said."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from calibration.causal import (
    CausalError,
    CausalGraph,
    discover,
    lagged_pairs,
    main,
    most_frequent_root,
)

NAMES = [f"r{i}" for i in range(6)]


def driven_series(driver: int, lag: int, n: int = 900, seed: int = 0) -> np.ndarray:
    """(n, 6): sparse pulses in region ``driver``; three regions repeat it ``lag`` frames later
    with their own gain; the other two are independent noise."""
    rng = np.random.default_rng(seed)
    pulses = np.zeros(n)
    for start in rng.choice(n - 20, 25, replace=False):
        pulses[start : start + 8] += rng.uniform(0.5, 3.0) * np.hanning(8)
    series = 0.05 * rng.standard_normal((n, 6)) + 0.2  # (n, 6) noise floor
    series[:, driver] += pulses
    for follower, gain in zip(
        [i for i in range(6) if i != driver][:3], (0.8, 1.2, 0.6), strict=True
    ):
        series[lag:, follower] += gain * pulses[:-lag]
    return series


@pytest.mark.parametrize("driver", [0, 3, 5])  # the root is found wherever the driver sits
def test_pc_finds_the_driving_region(driver):
    series = driven_series(driver, lag=3, seed=driver)
    graph = discover(series, np.ones(len(series), bool), NAMES, lag_frames=3, fallback="r1")
    assert graph.root == NAMES[driver]
    assert not graph.fallback_used
    drives = Counter(s for s, _, kind in graph.edges if kind == "lagged")
    assert drives[NAMES[driver]] >= 2  # it drives the followers
    assert all(n < drives[NAMES[driver]] for s, n in drives.items() if s != NAMES[driver])


def test_still_face_falls_back_and_says_why():
    noise = 0.2 + 0.01 * np.random.default_rng(1).standard_normal((300, 6))
    graph = discover(noise, np.ones(300, bool), NAMES, fallback="r4")
    assert graph.fallback_used and graph.root == "r4"
    assert "motion" in graph.reason


def test_too_few_frames_fall_back():
    series = driven_series(2, lag=3)[:40]
    graph = discover(series, np.ones(40, bool), NAMES, fallback="r0", min_samples=60)
    assert graph.fallback_used and graph.root == "r0" and "frames" in graph.reason


def test_lagged_pairs_never_span_a_gap():
    series = np.arange(20, dtype=np.float64)[:, None] * np.ones((1, 2))  # (20, 2) row = t
    valid = np.ones(20, bool)
    valid[8] = False
    past, present = lagged_pairs(series, valid, 3)
    assert np.all(present[:, 0] - past[:, 0] == 3)
    assert not np.any((past[:, 0] < 8) & (present[:, 0] > 8))  # no pair across frame 8
    assert 8 not in present[:, 0] and 8 not in past[:, 0]


@pytest.mark.parametrize(
    "series, valid, names, fallback",
    [
        (np.zeros((10, 3)), np.ones(10, bool), NAMES, "r0"),  # wrong number of columns
        (np.zeros((10, 6)), np.ones(9, bool), NAMES, "r0"),  # valid of another length
        (np.zeros((10, 6)), np.ones(10, bool), NAMES, "nose"),  # unknown fallback region
    ],
)
def test_bad_input_raises_a_clear_error(series, valid, names, fallback):
    with pytest.raises(CausalError):
        discover(series, valid, names, fallback=fallback)


def test_graph_saved_as_json_and_png(tmp_path):
    series = driven_series(1, lag=3)
    graph = discover(series, np.ones(len(series), bool), NAMES, fallback="r0")
    graph.save_json(tmp_path / "g.json")
    graph.save_png(tmp_path / "g.png")
    loaded = CausalGraph.load_json(tmp_path / "g.json")
    assert loaded == graph
    assert json.loads((tmp_path / "g.json").read_text())["schema"] == "mexlive-causal/v1"
    assert (tmp_path / "g.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_most_frequent_root_ignores_fallbacks():
    graphs = [
        CausalGraph(NAMES, 3, root="r2"),
        CausalGraph(NAMES, 3, root="r2"),
        CausalGraph(NAMES, 3, root="r5", fallback_used=True),
        CausalGraph(NAMES, 3, root="r5", fallback_used=True),
        CausalGraph(NAMES, 3, root="r5", fallback_used=True),
    ]
    assert most_frequent_root(graphs) == "r2"
    assert most_frequent_root(graphs[2:]) is None


def test_cli_on_a_feature_file(tmp_path, capsys):
    series = driven_series(4, lag=3)
    names = np.array([f"{n}.mag_on" for n in NAMES] + [f"{n}.dx_on" for n in NAMES])
    values = np.hstack([series, np.zeros_like(series)]).astype(np.float32)
    np.savez(tmp_path / "f.npz", values=values, valid=np.ones(len(series), bool), names=names)
    assert main([str(tmp_path / "f.npz"), "--out", str(tmp_path / "g")]) == 0
    assert "root region: r4" in capsys.readouterr().out
    assert main([str(tmp_path / "missing.npz")]) == 2
