"""benchmarks.brow_still: the brow-stillness threshold's measurement, on hand-made clips whose
expression motion and plain-video motion are known."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from benchmarks.brow_still import load_pairs, main, measure
from benchmarks.suite.stages import SuiteClip
from stream.face.nodes import N_NODES, NODE_GROUPS, STABLE_NODES
from tests.helpers import IOD_PX, synthetic_clip

FPS = 25.0
LENGTH = 150
BROWS = [i for i, g in enumerate(NODE_GROUPS) if g == "brows" and i not in STABLE_NODES]


def _save(path: Path, residual: np.ndarray, landmarks: np.ndarray, events=()) -> None:
    """A suite-format feature file (``SuiteClip.load``) with the given node motion."""
    k = len(events)
    np.savez(
        path,
        values=np.zeros((LENGTH, 1), np.float32),
        valid=np.ones(LENGTH, bool),
        names=np.array(["v"]),
        fps=np.array(FPS),
        landmarks_px=landmarks.astype(np.float32),
        truth_onset=np.array([e[0] for e in events], int).reshape(k),
        truth_apex=np.array([e[1] for e in events], int).reshape(k),
        truth_offset=np.array([e[2] for e in events], int).reshape(k),
        truth_kind=np.array(["micro"] * k),
        truth_peak_px=np.full(k, 2.5 * IOD_PX / 90.0),  # 2.5 px at 90 px between the eyes
        truth_aus=np.array(["1+2"] * k),  # brows
        node_residual=residual.astype(np.float32),
        node_valid=np.ones((LENGTH, 3), bool),
    )


def test_the_expression_s_own_brow_motion_and_the_still_share(tmp_path):
    landmarks, _, _ = synthetic_clip(LENGTH / FPS, FPS, lambda t, lm: None)
    plain = np.zeros((LENGTH, 3, N_NODES, 2))
    plain[100:110, :, BROWS, 1] = 4.0  # the person raises the brows: 4 px for 0.4 s
    injected = plain.copy()
    injected[40:46, :, BROWS[0], 0] += 3.0  # the expression: 3 px at one brow node
    _save(tmp_path / "v_plain.npz", plain, landmarks)
    _save(tmp_path / "v_s1.npz", injected, landmarks, [(40, 43, 45)])
    clips, plains = load_pairs(tmp_path, ["v"])
    assert [c.path.name for c in clips] == ["v_s1.npz"]
    rows, still = measure(clips, plains, still_px=2.4)
    assert rows["brows"]["n"] == 1 and rows["brows"]["signal_p50"] == pytest.approx(3.0, abs=1e-5)
    # still except while the brows move and for the second after: frames 100-134 of 150
    assert still["v"] == pytest.approx(1 - 35 / LENGTH, abs=1 / LENGTH)
    assert isinstance(SuiteClip.load(tmp_path / "v_plain.npz"), SuiteClip)


def test_a_missing_plain_clip_is_one_clear_error(tmp_path, capsys):
    assert main(["--features", str(tmp_path), "--videos", "nobody"]) == 2
    assert "no nobody_plain.npz" in capsys.readouterr().err
