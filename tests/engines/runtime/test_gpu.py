"""GPU backends: torch CUDA (eager and CUDA graphs) and TensorRT against the torch CPU reference.

The parity tests need a CUDA GPU (marked `gpu`) or TensorRT (marked `tensorrt`) and skip
cleanly without; `benchmarks/gpu_check.sh` runs them on a GPU machine. The cache-key and
backend-selection tests run everywhere.

Tolerances (max abs error over 300 carried frames, random and real feature rows):
FP32 on the GPU vs the CPU reference <= 1e-5 (different kernels, same math; matmuls in full
FP32, TF32 off); CUDA graph vs eager on the same GPU <= 1e-6 (the same kernels replayed).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from engines.models.spotter import Spotter, SpotterConfig
from engines.runtime.backends import BackendError, TorchEngine, make_engine
from engines.runtime.tensorrt import (
    EngineKey,
    cached_engine_status,
    engine_paths,
    tensorrt_usable,
)
from engines.weights import load_spotter

FRAMES = 300
TOL_FP32 = 1e-5
TOL_GRAPH = 1e-6

gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU here")


def _key(**change: object) -> EngineKey:
    base = dict(
        gpu="NVIDIA H100",
        compute_capability="9.0",
        tensorrt="10.13.0",
        onnx_sha256="ab" * 32,
        precision="fp32",
        max_streams=1024,
    )
    base.update(change)
    return EngineKey(**base)  # type: ignore[arg-type]


def test_engine_key_names_every_part() -> None:
    key = _key()
    for field, other in (
        ("gpu", "NVIDIA H200"),
        ("tensorrt", "11.4.0"),
        ("precision", "int8"),
        ("onnx_sha256", "cd" * 32),
        ("max_streams", 64),
    ):
        assert _key(**{field: other}).digest() != key.digest(), field


def test_cached_engine_status_detects_stale_and_foreign(tmp_path: Path) -> None:
    key = _key()
    engine_file, sidecar = engine_paths(tmp_path, key)
    assert cached_engine_status(tmp_path, key) == "missing"
    engine_file.write_bytes(b"serialized")
    assert "unreadable" in cached_engine_status(tmp_path, key)
    sidecar.write_text(json.dumps(key.__dict__))
    assert cached_engine_status(tmp_path, key) == "ok"
    # A file copied from another GPU under this key's name: its sidecar says so.
    sidecar.write_text(json.dumps({**key.__dict__, "gpu": "NVIDIA A100"}))
    assert cached_engine_status(tmp_path, key) == "built for another gpu"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU messages")
def test_gpu_backends_refused_clearly_without_gpu(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = Spotter(SpotterConfig(n_features=8, d_model=8, n_layers=1))
    for backend in ("tensorrt", "torch-cuda"):
        with pytest.raises(BackendError, match=backend):
            make_engine(backend, model, tmp_path)
    engine = make_engine("auto", model, tmp_path)
    assert engine.name in ("onnxruntime", "torch")
    assert "passed over" in engine.reason and "tensorrt" in engine.reason


def test_tensorrt_usable_says_what_to_install() -> None:
    ok, why = tensorrt_usable()
    if not ok:
        assert "tensorrt" in why.lower()


def _rows(n_features: int, batch: int, seed: int) -> np.ndarray:
    """(FRAMES, B, F) rows: real feature files from $MEXLIVE_FEATURES when set, else random."""
    folder = os.environ.get("MEXLIVE_FEATURES")
    rng = np.random.default_rng(seed)
    if not folder:
        return rng.standard_normal((FRAMES, batch, n_features)).astype(np.float32)
    from engines.train.data import load_clips

    clips = load_clips(folder)[:batch]
    x = np.stack([c.x.numpy()[:FRAMES] for c in clips], axis=1)  # (T, B, F)
    return np.nan_to_num(x).astype(np.float32)


def _max_err(engine_a, engine_b, rows: np.ndarray) -> float:
    batch = rows.shape[1]
    sa, sb = engine_a.init_state(batch), engine_b.init_state(batch)
    err = 0.0
    for x in rows:
        aa, pa, sa = engine_a.step(x, sa)
        ab, pb, sb = engine_b.step(x, sb)
        err = max(err, float(np.abs(aa - ab).max()), float(np.abs(pa - pb).max()))
    return err


@pytest.fixture(scope="module")
def shipped() -> Spotter:
    return load_spotter()[0]


@gpu
@pytest.mark.gpu
@pytest.mark.parametrize("batch", [1, 8])
def test_torch_cuda_matches_cpu(shipped: Spotter, batch: int) -> None:
    from engines.runtime.gpu import TorchCudaEngine

    torch.backends.cuda.matmul.allow_tf32 = False
    rows = _rows(shipped.config.n_features, batch, seed=batch)
    ref = TorchEngine(load_spotter()[0])
    eager = TorchCudaEngine(load_spotter()[0], cuda_graphs=False)
    graph = TorchCudaEngine(load_spotter()[0], cuda_graphs=True)
    assert _max_err(ref, eager, rows) <= TOL_FP32
    assert _max_err(eager, graph, rows) <= TOL_GRAPH


@gpu
@pytest.mark.gpu
def test_cuda_graph_reset_equals_fresh_start(shipped: Spotter) -> None:
    from engines.runtime.gpu import TorchCudaEngine

    engine = TorchCudaEngine(shipped, cuda_graphs=True)
    rng = np.random.default_rng(2)
    f = shipped.config.n_features
    state = engine.init_state(3)
    for _ in range(20):
        _, _, state = engine.step(rng.standard_normal((3, f)).astype(np.float32), state)
    state = engine.reset_streams(state, np.array([False, True, False]))
    assert not state.ssm[:, 1].any() and state.ssm[:, 0].any()
    ref = TorchEngine(load_spotter()[0])
    fresh = ref.init_state(1)
    for _ in range(10):
        x = rng.standard_normal((3, f)).astype(np.float32)
        a, _, state = engine.step(x, state)
        a1, _, fresh = ref.step(x[1:2], fresh)
        np.testing.assert_allclose(a[1:2], a1, atol=TOL_FP32)


@pytest.mark.tensorrt
@pytest.mark.skipif(not tensorrt_usable()[0], reason=tensorrt_usable()[1])
def test_tensorrt_fp32_matches_torch(shipped: Spotter, tmp_path: Path) -> None:
    from engines.runtime.export import export_step
    from engines.runtime.tensorrt import TensorRTEngine

    onnx_path = export_step(shipped, tmp_path / "step.onnx")
    messages: list[str] = []
    engine = TensorRTEngine.from_onnx(onnx_path, "fp32", 64, tmp_path / "trt", messages.append)
    rows = _rows(shipped.config.n_features, 8, seed=5)
    assert _max_err(TorchEngine(load_spotter()[0]), engine, rows) <= TOL_FP32
    # Second load: from the cache, no build message.
    messages.clear()
    TensorRTEngine.from_onnx(onnx_path, "fp32", 64, tmp_path / "trt", messages.append)
    assert not any("building" in m for m in messages), messages


@gpu
@pytest.mark.gpu
@pytest.mark.parametrize("cuda_graphs", [False, True])
def test_shared_steps_on_gpu_carry_waiting_streams(shipped: Spotter, cuda_graphs: bool) -> None:
    """SharedSteps on a GPU engine: a stream that sends nothing keeps its device state (the
    CUDA-graph state is restored in place)."""
    from engines.runtime.batching import SharedSteps
    from engines.runtime.gpu import TorchCudaEngine

    f = shipped.config.n_features
    batch = SharedSteps(TorchCudaEngine(shipped, cuda_graphs=cuda_graphs), f, max_wait_s=0.005)
    stalled, live = batch.join(), batch.join()
    rows = _rows(f, 2, seed=9)[:40]  # (T, 2, F)
    ref = TorchEngine(load_spotter()[0])
    alone = ref.init_state(1)
    for x in rows[:, 1]:
        apex, _ = batch.step(live, x)  # `stalled` sends nothing: each round times out
        a1, _, alone = ref.step(x[None], alone)
        assert abs(apex - float(a1[0])) <= TOL_FP32
    batch.leave(live)
    fresh = ref.init_state(1)
    for x in rows[:10, 0]:
        apex, _ = batch.step(stalled, x)  # continues from its untouched (fresh) state
        a1, _, fresh = ref.step(x[None], fresh)
        assert abs(apex - float(a1[0])) <= TOL_FP32
