"""The recognizer's ONNX graph against its torch reference (1e-5), its cache, and the live
recognizer on either backend."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engines.runtime.export_recognizer import (
    OnnxRecognizer,
    cached_onnx_recognizer,
    export_recognizer,
    main,
)
from engines.weights import DEFAULT_RECOGNIZER, load_recognizer
from stream.face.flow_stack import FlowStack

TOLERANCE = 1e-5  # float32 softmax outputs; ORT and torch order their sums differently


@pytest.fixture(scope="module")
def shipped():
    if not DEFAULT_RECOGNIZER.is_file():
        pytest.skip("no shipped recognizer weights")
    return load_recognizer()


def stacks(model, batch: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Flow (B, 2, T, S, S) of micro- to macro-sized motion and ROI-like masks (B, S, S)."""
    c, rng = model.config, np.random.default_rng(seed)
    flow = rng.normal(0, 1, (batch, 2, c.steps, c.size, c.size)).astype(np.float32)
    flow *= rng.uniform(0.05, 4.0, (batch, 1, 1, 1, 1)).astype(np.float32)  # px
    mask = (rng.random((batch, c.size, c.size)) > 0.6).astype(np.float32)
    return flow, mask


@pytest.mark.parametrize("variant", ["P", "C"])
def test_onnx_graph_matches_torch(shipped, tmp_path, variant):
    model, _ = shipped
    path = export_recognizer(model, tmp_path / f"rec_{variant}.onnx", variant)
    session = OnnxRecognizer(path)
    for batch, seed in ((1, 0), (5, 1)):  # the batch axis is dynamic
        flow, mask = stacks(model, batch, seed)
        reference = model.probabilities(torch.from_numpy(flow), torch.from_numpy(mask), variant)
        out = session.probabilities(flow, mask)
        assert out.shape == (batch, 3)
        np.testing.assert_allclose(out, reference.numpy(), atol=TOLERANCE)
    # a still face (all-zero flow hits the magnitude floor) as well
    still = np.zeros_like(flow[:1])
    np.testing.assert_allclose(
        session.probabilities(still, mask[:1]),
        model.probabilities(torch.from_numpy(still), torch.from_numpy(mask[:1]), variant).numpy(),
        atol=TOLERANCE,
    )


def test_cache_exports_once_and_rebuilds_a_damaged_file(shipped, tmp_path):
    model, manifest = shipped
    sha = manifest["sha256"]
    _, how = cached_onnx_recognizer(model, sha, "C", tmp_path)
    assert how.startswith("exported")
    _, how = cached_onnx_recognizer(model, sha, "C", tmp_path)
    assert how.startswith("cached")
    (path,) = tmp_path.glob("recognizer_C_*.onnx")
    path.write_bytes(b"not an onnx graph")
    session, how = cached_onnx_recognizer(model, sha, "C", tmp_path)
    assert how.startswith("re-exported") and session.probabilities(*stacks(model, 1, 2)).shape == (
        1,
        3,
    )


def test_event_recognizer_on_onnxruntime_equals_torch(shipped, tmp_path):
    from stream.live.recognition import EventRecognizer

    model, _ = shipped
    torch_rec = EventRecognizer(backend="torch")
    ort_rec = EventRecognizer(backend="onnxruntime", cache_dir=tmp_path)
    assert ort_rec.info["backend"] == "onnxruntime" and "recognizer_" in ort_rec.backend_reason
    flow, mask = stacks(model, 3, 3)
    for k in range(3):
        stack = FlowStack(flow[k], mask[k], ())
        np.testing.assert_allclose(
            ort_rec.probabilities(stack), torch_rec.probabilities(stack), atol=TOLERANCE
        )
    with pytest.raises(ValueError, match="backend"):
        EventRecognizer(backend="tensorrt")


def test_cli_writes_the_graph(shipped, tmp_path, capsys):
    assert main(["--out", str(tmp_path), "--variant", "P"]) == 0
    written = capsys.readouterr().out.strip()
    assert written.endswith(".onnx") and "recognizer_P_" in written
    assert main(["--weights", str(tmp_path / "missing.pt"), "--out", str(tmp_path)]) == 2
