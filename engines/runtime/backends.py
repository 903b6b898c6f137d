"""Inference backends for stepping the spotter frame by frame, one interface for all.

    engine = make_engine("auto", model, onnx_cache_dir)      # engine.reason says why this one
    state = engine.init_state(n_streams)
    apex, emotion_probs, state = engine.step(x, state)        # x (B, F) float32, numpy in/out
    state = engine.reset_streams(state, gap)                  # gap (B,) bool: fresh start there

- `TorchEngine`: `Spotter.step` in torch (inference mode), the reference.
- `OnnxRuntimeEngine`: the exported step graph (`engines/runtime/export.py`) in ONNX Runtime on the
  CPU execution provider with one intra-op thread (the live pipeline runs other stages on the
  other cores; one thread per engine also makes frames/s scale per core).

- `TorchCudaEngine` (`engines/runtime/gpu.py`): the step on a CUDA GPU, optionally as a CUDA graph.
- `TensorRTEngine` (`engines/runtime/tensorrt.py`): the exported graph built by TensorRT.

The CPU engines keep the state as numpy arrays (`EngineState`, the `SpotterState` layout); the
GPU engines keep it on the device. Callers only pass a state back to the engine that made it.
`auto` prefers TensorRT > torch on CUDA > ONNX Runtime > torch on the CPU, and says why.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, Union

import numpy as np

from engines.errors import BackendError
from engines.runtime.graph import INPUT_NAMES, OUTPUT_NAMES

if TYPE_CHECKING:  # torch loads only where a model is needed: not for a cached ONNX graph
    from engines.models.spotter import Spotter

# A model, or what loads it when it is needed (exporting, the torch engines): a live start
# whose ONNX graph is cached never imports torch (about 1.5 s).
ModelOrLoader = Union["Spotter", Callable[[], "Spotter"]]

BACKENDS = ("auto", "tensorrt", "torch-cuda", "onnxruntime", "torch")


class EngineState(NamedTuple):
    """Streaming state of every stream, as numpy float32 (the `SpotterState` layout)."""

    conv: np.ndarray  # (n_layers, B, d_inner, d_conv - 1)
    ssm: np.ndarray  # (n_layers, B, d_inner, d_state)


class Engine(Protocol):
    """What the live pipeline needs from a backend."""

    name: str
    reason: str  # why make_engine chose this backend ("" when built directly)

    def init_state(self, batch: int) -> EngineState: ...

    def step(
        self, x: np.ndarray, state: EngineState, valid: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, EngineState]: ...

    def reset_streams(self, state: EngineState, mask: np.ndarray) -> EngineState: ...


def _softmax(logits: np.ndarray) -> np.ndarray:
    # (B, C) → (B, C); the max is subtracted so exp never overflows.
    z = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def _reset(state: EngineState, mask: np.ndarray) -> EngineState:
    # Zero the streams where mask (B,) is True: a gap, equal to a fresh start (as
    # Spotter.reset_state). New arrays, so a caller's earlier state is never altered.
    gap = np.asarray(mask, dtype=bool)[None, :, None, None]  # (1, B, 1, 1)
    return EngineState(
        conv=np.where(gap, np.float32(0), state.conv), ssm=np.where(gap, np.float32(0), state.ssm)
    )


def _zeros(model: Spotter, batch: int) -> EngineState:
    c, n = model.config.ssm, model.config.n_layers
    return EngineState(
        conv=np.zeros((n, batch, c.d_inner, c.d_conv - 1), np.float32),
        ssm=np.zeros((n, batch, c.d_inner, c.d_state), np.float32),
    )


class TorchEngine:
    """`Spotter.step` in torch on CPU; numpy in, numpy out."""

    name = "torch"
    reason = ""

    def __init__(self, model: Spotter) -> None:
        self.model = model.cpu().eval()

    def init_state(self, batch: int) -> EngineState:
        return _zeros(self.model, batch)

    def step(
        self, x: np.ndarray, state: EngineState, valid: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, EngineState]:
        """x (B, F) float32, valid (B,) bool or None (all valid) → apex (B,), emotion
        probabilities (B, 3), next state."""
        import torch

        from engines.models.spotter import SpotterState

        with torch.inference_mode():
            xt = torch.from_numpy(np.ascontiguousarray(x, np.float32))  # (B, F), no copy
            st = SpotterState(torch.from_numpy(state.conv), torch.from_numpy(state.ssm))
            vt = None if valid is None else torch.from_numpy(np.asarray(valid, bool))
            out, nxt = self.model.step(xt, st, vt)
            probs = torch.softmax(out.emotion_logits, dim=-1)  # (B, 3)
            return out.apex.numpy(), probs.numpy(), EngineState(nxt.conv.numpy(), nxt.ssm.numpy())

    def reset_streams(self, state: EngineState, mask: np.ndarray) -> EngineState:
        return _reset(state, mask)


class OnnxRuntimeEngine:
    """The exported step graph in ONNX Runtime (default: CPU provider, 1 intra-op thread)."""

    name = "onnxruntime"
    reason = ""

    def __init__(self, onnx_path: str | Path, providers: list[str] | None = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise BackendError(f"onnxruntime is not importable: {exc}") from None
        self.path = Path(onnx_path)
        if not self.path.is_file():
            raise BackendError(f"ONNX step graph {self.path} is missing")
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only: the session's warnings are not ours
        try:
            self.session = ort.InferenceSession(
                str(self.path), options, providers=providers or ["CPUExecutionProvider"]
            )
        except Exception as exc:  # ORT raises its own types for a truncated/garbled file
            raise BackendError(
                f"ONNX step graph {self.path} cannot be loaded (corrupt or not an ONNX model; "
                f"delete it to re-export): {exc}"
            ) from None
        inputs = {i.name: i.shape for i in self.session.get_inputs()}
        outputs = [o.name for o in self.session.get_outputs()]
        if set(inputs) != set(INPUT_NAMES) or outputs != list(OUTPUT_NAMES):
            raise BackendError(
                f"ONNX step graph {self.path} has inputs {sorted(inputs)} and outputs {outputs}, "
                f"expected {list(INPUT_NAMES)} and {list(OUTPUT_NAMES)} (export it with "
                "engines.runtime.export)"
            )
        # conv_state (L, B, D, K-1), ssm_state (L, B, D, N): the fixed axes give init_state.
        self._conv_shape = inputs["conv_state"]
        self._ssm_shape = inputs["ssm_state"]
        self._ones: np.ndarray = np.ones(0, np.float32)

    def init_state(self, batch: int) -> EngineState:
        n, _, d, k = self._conv_shape
        _, _, _, s = self._ssm_shape
        return EngineState(
            conv=np.zeros((n, batch, d, k), np.float32), ssm=np.zeros((n, batch, d, s), np.float32)
        )

    def step(
        self, x: np.ndarray, state: EngineState, valid: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, EngineState]:
        """Same contract as `TorchEngine.step`."""
        batch = x.shape[0]
        if valid is None:
            if self._ones.shape[0] != batch:  # cached: no allocation per frame
                self._ones = np.ones(batch, np.float32)
            v = self._ones
        else:
            v = np.asarray(valid, np.float32)  # (B,)
        feeds: dict[str, Any] = {
            "x": np.ascontiguousarray(x, np.float32),
            "conv_state": state.conv,
            "ssm_state": state.ssm,
            "valid": v,
        }
        apex, _, emotion, conv, ssm = self.session.run(None, feeds)
        return apex, _softmax(emotion), EngineState(conv, ssm)

    def reset_streams(self, state: EngineState, mask: np.ndarray) -> EngineState:
        return _reset(state, mask)


def model_sha256(model: Spotter) -> str:
    """sha256 over the config and every state_dict tensor (name, shape, bytes).

    Names the cached graph when the caller has no file hash at hand; any change of weights or
    normalisation gives another name, so a stale graph is never reused.
    """
    h = hashlib.sha256(repr(sorted(vars(model.config).items())).encode())
    for key, value in model.state_dict().items():
        t = value.detach().cpu().contiguous()
        h.update(f"{key}:{tuple(t.shape)}:{t.dtype}".encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


def _resolve(model: ModelOrLoader) -> Spotter:
    return model() if callable(model) and not hasattr(model, "step") else model


def _export(model: ModelOrLoader, path: Path) -> None:
    from engines.runtime.export import export_step

    export_step(_resolve(model), path)


def _onnx_engine(
    model: ModelOrLoader, cache_dir: str | Path, weights_sha256: str | None
) -> tuple[OnnxRuntimeEngine, str]:
    sha = weights_sha256 or model_sha256(_resolve(model))
    path = Path(cache_dir) / f"spotter_step_{sha}.onnx"
    if not path.is_file():
        _export(model, path)
        return OnnxRuntimeEngine(path), f"exported {path.name}"
    try:
        return OnnxRuntimeEngine(path), f"cached {path.name}"
    except BackendError:
        # A cache entry is ours to rebuild: a damaged file is replaced, not fatal.
        os.unlink(path)
        _export(model, path)
        return OnnxRuntimeEngine(path), f"re-exported damaged {path.name}"


def nvidia_driver() -> str | None:
    """Why no NVIDIA GPU can be here (no driver loaded), or None when one may be. Read from
    /proc and /dev, so a machine without one never imports torch to find out."""
    if Path("/proc/driver/nvidia/version").is_file() or Path("/dev/nvidiactl").exists():
        return None
    return "no NVIDIA driver on this machine (/proc/driver/nvidia/version missing)"


def _gpu_engine(
    backend: str, model: ModelOrLoader, cache_dir: str | Path, weights_sha256: str | None
) -> tuple[Engine | None, str]:
    """A TensorRT or torch-CUDA engine, or (None, why not). Imports stay inside."""
    no_driver = nvidia_driver()
    if no_driver is not None:
        return None, no_driver
    import torch

    from engines.runtime.gpu import TorchCudaEngine, cuda_available

    ok, gpu = cuda_available()
    if not ok:
        return None, gpu
    if backend == "torch-cuda":
        return TorchCudaEngine(_resolve(model)), f"torch {torch.__version__} CUDA graphs on {gpu}"
    from engines.runtime.tensorrt import TensorRTEngine, TensorRTError, tensorrt_usable

    usable, why = tensorrt_usable()
    if not usable:
        return None, why
    sha = weights_sha256 or model_sha256(_resolve(model))
    onnx_path = Path(cache_dir) / f"spotter_step_{sha}.onnx"
    if not onnx_path.is_file():
        _export(model, onnx_path)
    try:
        engine = TensorRTEngine.from_onnx(onnx_path, "fp32", cache_dir=Path(cache_dir) / "trt")
    except (TensorRTError, RuntimeError, OSError) as exc:
        return None, f"TensorRT failed: {exc}"
    return engine, f"{why} FP32 on {gpu}"


def make_engine(
    backend: str,
    model: ModelOrLoader,
    onnx_cache_dir: str | Path,
    weights_sha256: str | None = None,
) -> Engine:
    """An engine for `backend` in BACKENDS; its `reason` attribute says why it was chosen.

    "onnxruntime" exports the step graph to `onnx_cache_dir` as spotter_step_<sha256>.onnx
    (the weights file's sha256 when given, else `model_sha256`), re-exported when missing or
    damaged. "tensorrt" builds from that graph (engines cached under `onnx_cache_dir`/trt);
    "torch-cuda" steps on the GPU with CUDA graphs. A backend asked for by name that cannot run
    raises BackendError naming what is missing; "auto" tries TensorRT > torch-CUDA >
    ONNX Runtime > torch-CPU and records in `reason` why each was passed over. `model` may
    be a function that loads it: called only when a graph must be exported or torch runs.
    """
    if backend not in BACKENDS:
        raise BackendError(f"unknown backend {backend!r}; choose one of {BACKENDS}")
    passed_over: list[str] = []
    for gpu_backend in ("tensorrt", "torch-cuda"):
        if backend not in ("auto", gpu_backend):
            continue
        engine, why = _gpu_engine(gpu_backend, model, onnx_cache_dir, weights_sha256)
        if engine is not None:
            engine.reason = f"{'auto' if backend == 'auto' else 'backend'} {gpu_backend}: {why}"
            return engine
        if backend == gpu_backend:
            raise BackendError(f"backend {gpu_backend!r} cannot run: {why}")
        passed_over.append(f"{gpu_backend}: {why}")
    skipped = f" [passed over: {'; '.join(passed_over)}]" if passed_over else ""
    cpu_engine: TorchEngine | OnnxRuntimeEngine
    if backend == "torch":
        cpu_engine = TorchEngine(_resolve(model))
        cpu_engine.reason = "backend 'torch' requested"
        return cpu_engine
    try:
        import onnxruntime as ort
    except ImportError as exc:
        if backend == "onnxruntime":
            raise BackendError(
                f"backend 'onnxruntime' requested but not importable ({exc}); "
                "pip install onnxruntime"
            ) from None
        cpu_engine = TorchEngine(_resolve(model))
        cpu_engine.reason = f"auto: onnxruntime not importable ({exc}); using torch{skipped}"
        return cpu_engine
    try:
        cpu_engine, how = _onnx_engine(model, onnx_cache_dir, weights_sha256)
    except (BackendError, OSError, RuntimeError, ValueError) as exc:
        if backend == "onnxruntime":
            raise BackendError(f"backend 'onnxruntime' failed: {exc}") from None
        cpu_engine = TorchEngine(_resolve(model))
        cpu_engine.reason = f"auto: ONNX export/load failed ({exc}); using torch{skipped}"
        return cpu_engine
    prefix = "auto: onnxruntime importable" if backend == "auto" else "backend 'onnxruntime'"
    cpu_engine.reason = (
        f"{prefix} (onnxruntime {ort.__version__}, CPUExecutionProvider, 1 thread; {how}){skipped}"
    )
    return cpu_engine
