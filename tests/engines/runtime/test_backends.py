"""Backends: ONNX Runtime steps the spotter like torch does (state carried), resets equal a
fresh start, the exported graph is a clean loop-free step graph, bad files fail clearly."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from engines.models.spotter import Spotter, SpotterConfig
from engines.runtime.backends import (
    BackendError,
    OnnxRuntimeEngine,
    TorchEngine,
    make_engine,
    model_sha256,
)
from engines.runtime.export import FORBIDDEN_OPS, check_graph, export_step, op_types
from engines.weights import load_spotter

pytest.importorskip("onnxruntime")

TOL = 1e-5  # max abs error ORT vs torch over 300 carried frames (float32, same op order)
FRAMES = 300


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread() -> Iterator[None]:
    # Tiny per-frame ops: a second intra-op thread only spins against the other jobs on a busy
    # 2-core box (seen: 1.7 s → 15 s per 300 frames); ORT runs on one thread too.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny() -> Spotter:
    torch.manual_seed(0)
    return Spotter(SpotterConfig(n_features=20, d_model=16, n_layers=1)).eval()


@pytest.fixture(scope="module")
def tiny_onnx(tiny: Spotter, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_step(tiny, tmp_path_factory.mktemp("onnx") / "tiny.onnx")


@pytest.fixture(scope="module")
def shipped() -> Spotter:
    return load_spotter()[0]


@pytest.fixture(scope="module")
def shipped_onnx(shipped: Spotter, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_step(shipped, tmp_path_factory.mktemp("onnx") / "spotter_step.onnx")


def _run_both(
    model: Spotter, onnx_path: Path, batch: int, seed: int, invalid_every: int = 0
) -> tuple[float, float, float]:
    """Step both engines over FRAMES random frames; max abs diff of apex, probs, state."""
    rng = np.random.default_rng(seed)
    ref, ort = TorchEngine(model), OnnxRuntimeEngine(onnx_path)
    s_ref, s_ort = ref.init_state(batch), ort.init_state(batch)
    err_apex = err_probs = 0.0
    for t in range(FRAMES):
        x = rng.standard_normal((batch, model.config.n_features)).astype(np.float32)
        valid = None
        if invalid_every:
            valid = rng.random(batch) > 1.0 / invalid_every  # some invalid rows
        a_ref, p_ref, s_ref = ref.step(x, s_ref, valid)
        a_ort, p_ort, s_ort = ort.step(x, s_ort, valid)
        assert a_ort.shape == (batch,) and p_ort.shape == (batch, 3), t
        err_apex = max(err_apex, float(np.abs(a_ref - a_ort).max()))
        err_probs = max(err_probs, float(np.abs(p_ref - p_ort).max()))
    err_state = max(
        float(np.abs(s_ref.conv - s_ort.conv).max()), float(np.abs(s_ref.ssm - s_ort.ssm).max())
    )
    np.testing.assert_allclose(p_ort.sum(-1), 1.0, atol=1e-6)
    return err_apex, err_probs, err_state


@pytest.mark.parametrize("batch", [1, 4])
def test_ort_matches_torch_random_tiny(tiny: Spotter, tiny_onnx: Path, batch: int) -> None:
    errs = _run_both(tiny, tiny_onnx, batch, seed=batch)
    assert max(errs) <= TOL, errs


@pytest.mark.parametrize("batch", [1, 4])
def test_ort_matches_torch_shipped(shipped: Spotter, shipped_onnx: Path, batch: int) -> None:
    # The real model, with invalid rows mixed in (the graph's `valid` input).
    errs = _run_both(shipped, shipped_onnx, batch, seed=10 + batch, invalid_every=7)
    assert max(errs) <= TOL, errs


def test_reset_equals_fresh_start(shipped: Spotter, shipped_onnx: Path) -> None:
    rng = np.random.default_rng(3)
    f = shipped.config.n_features
    for engine in (TorchEngine(shipped), OnnxRuntimeEngine(shipped_onnx)):
        state = engine.init_state(3)
        for _ in range(20):
            _, _, state = engine.step(rng.standard_normal((3, f)).astype(np.float32), state)
        before = state
        state = engine.reset_streams(state, np.array([False, True, False]))
        assert np.array_equal(before.ssm[:, 0], state.ssm[:, 0])  # untouched streams kept
        assert not np.any(state.conv[:, 1]) and not np.any(state.ssm[:, 1])
        assert np.any(before.ssm[:, 1])  # the input state was not modified in place
        fresh = engine.init_state(1)
        xs = rng.standard_normal((10, 3, f)).astype(np.float32)
        for x in xs:
            a, p, state = engine.step(x, state)
            a1, p1, fresh = engine.step(x[1:2], fresh)
            np.testing.assert_allclose(a[1:2], a1, atol=1e-6, err_msg=engine.name)
            np.testing.assert_allclose(p[1:2], p1, atol=1e-6, err_msg=engine.name)


def test_exported_graph_is_clean(shipped_onnx: Path) -> None:
    check_graph(shipped_onnx)  # onnx.checker + forbidden ops
    ops = set(op_types(shipped_onnx))
    assert not ops & FORBIDDEN_OPS
    assert "Loop" not in ops and "DFT" not in ops


def test_corrupt_onnx_raises_backend_error(shipped_onnx: Path, tmp_path: Path) -> None:
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(shipped_onnx.read_bytes()[:1000])  # truncated mid-file
    with pytest.raises(BackendError, match=re.escape(str(bad))):
        OnnxRuntimeEngine(bad)
    missing = tmp_path / "missing.onnx"
    with pytest.raises(BackendError, match=re.escape(str(missing))):
        OnnxRuntimeEngine(missing)


def test_make_engine_caches_by_sha(tiny: Spotter, tmp_path: Path) -> None:
    engine = make_engine("onnxruntime", tiny, tmp_path)
    assert engine.name == "onnxruntime" and "exported" in engine.reason
    cached = tmp_path / f"spotter_step_{model_sha256(tiny)}.onnx"
    assert cached.is_file()
    assert "cached" in make_engine("onnxruntime", tiny, tmp_path).reason
    cached.write_bytes(b"garbage")  # a damaged cache entry is rebuilt, not fatal
    assert "re-exported" in make_engine("onnxruntime", tiny, tmp_path).reason
    auto = make_engine("auto", tiny, tmp_path)
    # auto prefers a GPU (torch-cuda here, where TensorRT is absent) and else ONNX Runtime.
    expected = "torch-cuda" if torch.cuda.is_available() else "onnxruntime"
    assert auto.name == expected and auto.reason.startswith("auto"), auto.reason
    assert make_engine("torch", tiny, tmp_path).name == "torch"
    with pytest.raises(BackendError, match="unknown backend"):
        make_engine("openvino", tiny, tmp_path)


def test_chunk_graph_equals_stepping(shipped: Spotter, tmp_path: Path) -> None:
    from engines.runtime.export import export_chunk
    from engines.runtime.offline import ChunkRunner

    path = export_chunk(shipped, tmp_path / "chunk8.onnx", chunk=8)
    check_graph(path)  # no Loop/Scan/DFT: one unrolled graph
    rng = np.random.default_rng(21)
    length = 61  # not a multiple of the chunk: the last one is padded
    x = rng.standard_normal((length, shipped.config.n_features)).astype(np.float32)
    valid = rng.random(length) > 0.1
    apex, probs = ChunkRunner(path).run(x, valid)
    ref, state = TorchEngine(shipped), TorchEngine(shipped).init_state(1)
    for t in range(length):
        a, p, state = ref.step(x[t : t + 1], state, valid[t : t + 1])
        assert abs(apex[t] - a[0]) <= TOL and np.abs(probs[t] - p[0]).max() <= TOL, t
