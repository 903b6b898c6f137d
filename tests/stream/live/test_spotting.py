"""The spotting stage: streaming step scores equal the model's forward pass over the same
rows, a gap zeroes the state, events are schema-valid, and bad weights are refused."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from engines.models.spotter import Spotter, SpotterConfig
from engines.weights import WeightsError, save_spotter
from stream.contracts import FeatureRow, Frame, FrameResults
from stream.face.features import feature_names
from stream.live.spotting import SpottingStage
from stream.output.events import validate_event

F = len(feature_names())


@pytest.fixture
def weights(tmp_path):
    torch.manual_seed(0)
    model = Spotter(SpotterConfig(n_features=F, d_model=16, n_layers=1))
    path = tmp_path / "spotter.pt"
    sha = save_spotter(model, path, list(feature_names()))
    (tmp_path / "manifest.json").write_text(json.dumps({"file": "spotter.pt", "sha256": sha}))
    return path


def feed(stage: SpottingStage, rows: np.ndarray, valid: np.ndarray) -> list[float | None]:
    scores = []
    for i, (values, ok) in enumerate(zip(rows, valid, strict=True)):
        frame = Frame(i, i * 33_333_333, i / 30, np.zeros((2, 2, 3), np.uint8))
        results = FrameResults(features=FeatureRow(i, frame.t_mono_ns, values, bool(ok)))
        stage(frame, results)
        scores.append(results.apex_score)
    return scores


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])  # both live paths, same numbers
def test_streaming_scores_equal_forward_and_gaps_reset(weights, backend, tmp_path):
    rng = np.random.default_rng(0)
    rows = rng.normal(0, 1, (120, F)).astype(np.float32)
    valid = np.ones(120, bool)
    valid[60] = False  # a gap: the state must start afresh after it
    stage = SpottingStage(
        lambda event: None, weights=weights, backend=backend, cache_dir=tmp_path / "cache"
    )
    assert stage.engine.name == backend
    scores = feed(stage, rows, valid)
    assert scores[60] is None
    with torch.inference_mode():
        for part in (slice(0, 60), slice(61, 120)):
            out, _ = stage.model.forward(torch.from_numpy(rows[part])[None])
            # tolerance: float32 rounding (ONNX Runtime fuses ops differently)
            np.testing.assert_allclose(scores[part], out.apex[0].numpy(), atol=1e-5)


def test_events_are_schema_valid(weights):
    events = []
    stage = SpottingStage(events.append, weights=weights, backend="torch")
    stage.decoder.baseline_floor = 0.0
    t = np.arange(300) / 30
    # Drive the decoder directly with a clean bump; the stage turns it into an event.
    for i, ti in enumerate(t):
        score = float(np.exp(-0.5 * ((ti - 5.0) / 0.08) ** 2))
        for spotted in stage.decoder.update(i, ti, i, score, np.array([0.2, 0.7, 0.1])):
            stage._emit(spotted)
    assert len(events) == 1
    line = events[0].to_dict()
    assert validate_event(line) == [] and line["kind"] == "micro"
    assert line["model"]["sha256"] == stage.manifest["sha256"]


def test_altered_weights_are_refused(weights):
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="do not match their manifest"):
        SpottingStage(lambda event: None, weights=weights)


def _with_manifest(weights, **fields):
    manifest = json.loads((weights.parent / "manifest.json").read_text())
    manifest.update(fields)
    (weights.parent / "manifest.json").write_text(json.dumps(manifest))


def test_weights_of_an_unknown_layout_are_refused(weights):
    _with_manifest(weights, input="regions/v0")
    with pytest.raises(WeightsError, match="input layout 'regions/v0'"):
        SpottingStage(lambda event: None, weights=weights)


def test_weights_of_the_old_layout_are_refused_not_misread(weights):
    # same width, other channels: only the manifest's layout hash can tell
    _with_manifest(weights, input="raw", n_features=F, feature_names_sha256="0" * 64)
    with pytest.raises(WeightsError, match="would be misread"):
        SpottingStage(lambda event: None, weights=weights)


def test_old_layout_weights_exit_2_in_one_line(weights, capsys):
    from stream.app.cli import main

    _with_manifest(weights, input="raw", n_features=F, feature_names_sha256="0" * 64)
    code = main(
        ["--source", "synthetic", "--headless", "--duration", "1", "--weights", str(weights)]
    )
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if "misread" in line]  # (progress lines may come first)
    assert code == 2 and len(errors) == 1 and "Traceback" not in "".join(err), err
