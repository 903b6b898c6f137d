"""benchmarks.fit_check: a node spotter fitted to a few real clips ranks their expressions
(tiny node-feature clips as in tests/engines/train, marked as real video)."""

from __future__ import annotations

import json

import numpy as np

from benchmarks.fit_check import main as fit_check_main
from engines.train.spotter import main as train_main
from tests.helpers import write_clip


def write_real_video(folder, video: str, seeds: list[int]) -> None:
    """``<video>_plain.npz`` and ``<video>_s<seed>.npz`` marked as real video (their truth:
    one micro, one macro, bumps in every channel)."""
    folder.mkdir(exist_ok=True)
    names = [f"{video}_plain.npz", *(f"{video}_s{s}.npz" for s in seeds)]
    for k, name in enumerate(names):
        path = folder / name
        write_clip(path, f"{video}.mp4", k, nodes=True)
        arrays = dict(np.load(path))
        arrays["synthetic"] = np.array(json.dumps({"background": "real"}))
        np.savez_compressed(path, **arrays)


def test_a_fitted_spotter_ranks_its_own_expressions(tmp_path, capsys):
    folder = tmp_path / "f"
    write_real_video(folder, "vid", [100, 101])
    weights = tmp_path / "w" / "spotter.pt"
    crops = ["--crop-min", "60", "--crop-max", "120", "--batch", "4", "--epochs", "1"]
    assert (
        train_main(["--input", "nodes", "--features", str(folder), "--out", str(weights), *crops])
        == 0
    )
    args = ["--features", str(folder), "--videos", "vid", "--epochs", "5"]
    assert fit_check_main([*args, "--weights", str(weights)]) == 0
    out = capsys.readouterr().out
    assert "3 clips of 1 videos; 5 epochs, 5 steps" in out
    (row,) = [line for line in out.splitlines() if line.startswith("| vid |")]
    _, _, n, fitted, other, _ = row.split("|")
    assert int(n) == 3  # one micro-expression in each clip
    assert float(fitted) >= 0.9  # the bumps are in its input: fitted, it ranks them first
    assert 0 <= float(other) <= 1  # the given weights' ranking of the same clips


def test_an_unknown_video_is_bad_input(tmp_path, capsys):
    write_real_video(tmp_path / "f", "vid", [100])
    args = ["--features", str(tmp_path / "f"), "--videos", "vid,other", "--epochs", "1"]
    assert fit_check_main(args) == 2
    assert "no real clips of other" in capsys.readouterr().err
