"""The instrument's node rows: the rise-and-return candidate and the per-group node noise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from benchmarks.suite.front_end import STABLE_ROW, TEMPLES_ROW, node_noise, node_noise_by_video
from benchmarks.suite.labels import EventLabel
from benchmarks.suite.stages import SuiteClip, node_rise_and_return
from stream.face.nodes import N_NODES, NODE_GROUPS, STABLE_NODES

FPS = 25.0
OFFSETS = (40.0, 80.0, 160.0)  # 1, 2 and 4 frames at 25 fps


def _positions_to_residual(position: np.ndarray) -> np.ndarray:
    """(L, N, 2) node positions → (L, O, N, 2) flow from each offset ago to now (0 before)."""
    residual = np.zeros((len(position), len(OFFSETS), *position.shape[1:]))
    for o, ms in enumerate(OFFSETS):
        k = round(ms / 1e3 * FPS)
        residual[k:, o] = position[k:] - position[:-k]
    return residual


def _rise_and_return(position: np.ndarray) -> np.ndarray:
    valid = np.ones((len(position), len(OFFSETS)), bool)
    return node_rise_and_return(_positions_to_residual(position), valid, FPS, OFFSETS)


def test_a_bump_gives_its_amplitude_a_step_and_drift_give_nothing():
    length, amplitude = 60, 2.0
    bump = np.zeros((length, 3, 2))  # node 0: out and back over 8 frames; 1: a step; 2: drift
    bump[20:24, 0, 1] = np.linspace(0.5, 2.0, 4) * amplitude / 2.0
    bump[24:28, 0, 1] = np.linspace(2.0, 0.5, 4) * amplitude / 2.0
    bump[30:, 1, 0] = 3.0
    bump[:, 2, 0] = 0.2 * np.arange(length)  # 0.2 px a frame, steady
    signal = _rise_and_return(bump)  # (L, 3)
    # the 160 ms offset (4 frames) spans the rise and the return: A within the sampling of the
    # ramps (the peak frame is one of four), exact for the step and the drift
    assert signal[:, 0].max() == pytest.approx(amplitude, abs=0.4)
    assert signal[:, 1].max() == 0.0
    assert signal[:, 2].max() == pytest.approx(0.0, abs=1e-9)


def test_rise_and_return_is_causal_and_needs_both_flows_valid():
    position = np.zeros((40, 1, 2))
    position[20:24, 0, 0] = 2.0
    residual = _positions_to_residual(position)
    valid = np.ones((40, 3), bool)
    whole = node_rise_and_return(residual, valid, FPS, OFFSETS)
    head = node_rise_and_return(residual[:26], valid[:26], FPS, OFFSETS)
    np.testing.assert_array_equal(whole[:26], head)  # frame t reads frames ≤ t only
    valid[:, :] = False
    assert node_rise_and_return(residual, valid, FPS, OFFSETS).max() == 0.0


def _clip(residual: np.ndarray, onset=(), offset=()) -> SuiteClip:
    length = residual.shape[0]
    return SuiteClip(
        path=Path("x.npz"),
        video="x",
        fps=FPS,
        values=np.zeros((length, 1), np.float32),
        valid=np.ones(length, bool),
        names=("v",),
        landmarks_px=np.zeros((length, 68, 2)),
        onset=np.array(onset, int),
        apex=np.array(onset, int),
        offset=np.array(offset, int),
        kind=np.array(["micro"] * len(onset)),
        peak_px=np.ones(len(onset)),
        node_residual=residual.astype(np.float32),
        node_valid=np.ones((length, len(OFFSETS)), bool),
    )


def test_node_noise_splits_the_expression_from_what_the_nodes_do_anyway():
    rng = np.random.default_rng(0)
    length = 200
    brows = [i for i, g in enumerate(NODE_GROUPS) if g == "brows" and i not in STABLE_NODES]
    plain_res = rng.normal(0.0, 0.1, (length, len(OFFSETS), N_NODES, 2))
    plain_res[100:120, :, brows, 0] += 5.0  # the person raises the brows in a talking stretch
    injected_res = plain_res.copy()
    injected_res[40:46, :, brows[0], 1] += 1.5  # the expression: 1.5 px at one brow node
    plain = _clip(plain_res)
    injected = _clip(injected_res, onset=(40,), offset=(45,))
    label = EventLabel(0, 40, 42, 45, 2.0, "2–3", "calm", "brows")
    calm = np.ones(length, bool)
    calm[95:125] = False  # the context detectors marked the stretch
    rows = node_noise([label], [(injected, plain)], [plain], [calm])
    assert rows["brows"]["n"] == 1
    assert rows["brows"]["signal_p50"] == pytest.approx(1.5, abs=1e-5)  # plain cancels
    assert rows["brows"]["noise_p99"] > 4.0  # the raised brows count as noise …
    assert rows["brows"]["noise_calm_p99"] < 1.0  # … but not in the calm frames
    assert rows["mouth"]["n"] == 0 and np.isnan(rows["mouth"]["signal_p50"])
    assert rows[STABLE_ROW]["noise_p99"] < 1.0
    assert rows[TEMPLES_ROW]["noise_p99"] < 1.0
    videos = node_noise_by_video([plain], [calm])
    assert videos["x"]["calm_share"] == pytest.approx(170 / 200)
    assert videos["x"]["brows"] == pytest.approx(rows["brows"]["noise_calm_p99"])
    assert videos["x"]["mouth"] < 1.0
    # the live rule: brows still except while raised (frames 100-119) and the second after
    # (25 frames), within the calm frames (all but 95-124)
    assert videos["x"]["spottable_share"] == pytest.approx((200 - 30 - 20) / 200)
