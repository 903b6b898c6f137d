"""Feature files the shipped spotter cannot read (another width, or no node arrays for the
node spotter), evaluated or benchmarked: exit 2 with one line naming the file and what is
missing, never a traceback from deep inside ONNX Runtime or torch."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.bench_spotting import main as bench_main
from calibration.int8 import main as int8_main
from engines.inputs import model_width, takes_nodes
from engines.weights import load_spotter
from tests.helpers import CLIP_NAMES, write_clip


@pytest.fixture
def narrow_features(tmp_path: Path) -> Path:
    folder = tmp_path / "features"
    folder.mkdir()
    write_clip(folder / "clip_0000.npz", "a.jpg", 0)  # 8 fake features, not the layout's
    return folder


@pytest.mark.parametrize(
    "command",
    [
        "bench_spotting",  # accuracy of the shipped spotter on these features
        "int8",  # INT8 calibration of the shipped spotter on them
    ],
)
def test_features_of_another_width_exit_2(command, narrow_features, tmp_path, capsys):
    if command == "bench_spotting":
        code = bench_main(["--features", str(narrow_features)])
    else:
        code = int8_main(["--features", str(narrow_features), "--out", str(tmp_path / "onnx")])
    assert code == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "Traceback" not in err
    model, manifest = load_spotter()
    if takes_nodes(manifest):  # the node spotter: region rows without the node arrays
        assert "no node arrays" in err and "clip_0000.npz" in err
    else:  # "have": the width the model's input takes from these rows (raw, or motion rows)
        here = model_width(manifest, [str(n) for n in CLIP_NAMES])
        assert f"take {model.config.n_features} features" in err and f"have {here}" in err
    assert not (tmp_path / "onnx").exists()  # nothing exported before the check
