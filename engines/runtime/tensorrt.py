"""TensorRT builder and runtime for the spotter's step graph (TensorRT 10 / 11 Python API).

    engine = TensorRTEngine.from_onnx(onnx_path, precision="fp32", max_streams=1024)
    state = engine.init_state(n_streams)
    apex, emotion_probs, state = engine.step(x, state)

Build: the ONNX step graph (`engines/runtime/export.py`; for INT8 the QDQ file and for FP16 the FP16
file of `calibration/int8.py`) is parsed into a strongly typed network — TensorRT 11 removed
the FP16/INT8 builder flags and implicit calibrators, so the precision is the ONNX file's own
(explicit Q/DQ nodes, FP16 initialisers). One optimisation profile spans 1..max_streams
streams. A timing cache beside the engines makes rebuilds fast.

Cache: serialized engines live under `cache_dir` (default $XDG_CACHE_HOME/mexlive/tensorrt),
named by a key over GPU name + compute capability + TensorRT version + ONNX sha256 +
precision + max_streams; a JSON sidecar holds the key's parts. A file whose sidecar does not
match, or that TensorRT refuses to deserialize (another version, another GPU, damaged), is
rebuilt with a message — never used.

Run: `execute_async_v3` on torch CUDA tensors on torch's current stream. The state stays in
FP32 device buffers; each state has two buffers that swap roles every step (the output of one
step is the input of the next), so no copy is made.

`tensorrt` and CUDA are imported only when an engine is built; `tensorrt_usable()` checks by
creating a builder, which fails without a usable GPU even where the module imports.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from engines.errors import BackendError
from engines.runtime.cache import user_cache_dir
from engines.runtime.export import INPUT_NAMES, OUTPUT_NAMES
from engines.weights import sha256_file

PRECISIONS = ("fp32", "fp16", "int8")
WORKSPACE_BYTES = 1 << 28


class TensorRTError(BackendError):
    """TensorRT missing, no usable GPU, an ONNX file it cannot parse, or a failed build."""


def tensorrt_usable() -> tuple[bool, str]:
    """(usable, why): TensorRT importable and a builder creatable (which needs a GPU)."""
    try:
        import tensorrt as trt
    except ImportError as exc:
        return False, f"tensorrt not importable ({exc}); install tensorrt-cu12 or tensorrt-cu13"
    try:
        builder = trt.Builder(trt.Logger(trt.Logger.ERROR))
    except Exception as exc:  # TypeError/RuntimeError: no driver, no device
        return False, f"TensorRT {trt.__version__} cannot create a builder: {exc}"
    if builder is None:
        return False, f"TensorRT {trt.__version__} cannot create a builder (no usable GPU)"
    return True, f"TensorRT {trt.__version__}"


@dataclass(frozen=True)
class EngineKey:
    """What a serialized engine was built for; any difference means rebuild."""

    gpu: str
    compute_capability: str
    tensorrt: str
    onnx_sha256: str
    precision: str
    max_streams: int

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:32]


def engine_paths(cache_dir: Path, key: EngineKey) -> tuple[Path, Path]:
    """(engine file, sidecar JSON) for `key` under `cache_dir`."""
    stem = f"spotter_{key.precision}_{key.digest()}"
    return cache_dir / f"{stem}.engine", cache_dir / f"{stem}.json"


def cached_engine_status(cache_dir: Path, key: EngineKey) -> str:
    """ "ok", "missing" or the reason a cached engine must be rebuilt (stale or foreign)."""
    engine_file, sidecar = engine_paths(cache_dir, key)
    if not engine_file.is_file():
        return "missing"
    try:
        found = json.loads(sidecar.read_text())
    except (OSError, ValueError):
        return f"{sidecar.name} missing or unreadable"
    if found != asdict(key):
        changed = sorted(k for k, v in asdict(key).items() if found.get(k) != v)
        return f"built for another {', '.join(changed)}"
    return "ok"


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


class _IO(NamedTuple):
    conv: tuple[Tensor, Tensor]  # ping-pong buffers (L, B, D, K-1)
    ssm: tuple[Tensor, Tensor]  # (L, B, D, N)


class TRTState:
    """Device state for B streams: two buffers per state tensor; `flip` says which is current."""

    def __init__(self, io: _IO) -> None:
        self.io = io
        self.flip = 0

    @property
    def conv(self) -> Tensor:
        return self.io.conv[self.flip]

    @property
    def ssm(self) -> Tensor:
        return self.io.ssm[self.flip]


class TensorRTEngine:
    """A deserialized step engine and one execution context."""

    name = "tensorrt"
    reason = ""

    def __init__(self, serialized: bytes, precision: str, log: Callable[[str], None] = print):
        import tensorrt as trt

        self.trt = trt
        self.precision = precision
        self._logger = trt.Logger(trt.Logger.WARNING)
        runtime = trt.Runtime(self._logger)
        self.engine = runtime.deserialize_cuda_engine(serialized)
        if self.engine is None:
            raise TensorRTError("TensorRT could not deserialize the engine (stale or foreign)")
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        if sorted(names) != sorted(INPUT_NAMES + OUTPUT_NAMES):
            raise TensorRTError(f"engine has tensors {names}, not the spotter step graph's")
        self._shape = {n: tuple(self.engine.get_tensor_shape(n)) for n in names}
        self.device = torch.device("cuda")
        self._outputs: dict[int, tuple[Tensor, Tensor, Tensor]] = {}
        self._ones: dict[int, Tensor] = {}
        self.log = log

    @classmethod
    def from_onnx(
        cls,
        onnx_path: str | Path,
        precision: str = "fp32",
        max_streams: int = 1024,
        cache_dir: str | Path | None = None,
        log: Callable[[str], None] = print,
    ) -> TensorRTEngine:
        """Load the cached engine for this ONNX file, GPU, TensorRT and precision, or build it."""
        ok, why = tensorrt_usable()
        if not ok:
            raise TensorRTError(why)
        if precision not in PRECISIONS:
            raise TensorRTError(f"precision {precision!r} not in {PRECISIONS}")
        import tensorrt as trt

        cache = Path(cache_dir) if cache_dir else user_cache_dir() / "tensorrt"
        cache.mkdir(parents=True, exist_ok=True)
        major, minor = torch.cuda.get_device_capability(0)
        key = EngineKey(
            gpu=torch.cuda.get_device_name(0),
            compute_capability=f"{major}.{minor}",
            tensorrt=trt.__version__,
            onnx_sha256=sha256_file(onnx_path),
            precision=precision,
            max_streams=max_streams,
        )
        engine_file, sidecar = engine_paths(cache, key)
        status = cached_engine_status(cache, key)
        if status == "ok":
            try:
                return cls(engine_file.read_bytes(), precision, log)
            except TensorRTError as exc:
                status = str(exc)
        if status != "missing":
            log(f"TensorRT: rebuilding {engine_file.name}: {status}")
        serialized = build_engine(onnx_path, max_streams, cache / "timing.cache", log)
        _write_atomic(engine_file, serialized)
        _write_atomic(sidecar, json.dumps(asdict(key), indent=1).encode())
        return cls(serialized, precision, log)

    def init_state(self, batch: int) -> TRTState:
        def pair(name: str) -> tuple[Tensor, Tensor]:
            shape = list(self._shape[name])
            shape[1] = batch  # (L, B, D, ·): the batch axis is the profile's dynamic one
            return tuple(torch.zeros(shape, device=self.device) for _ in range(2))  # type: ignore[return-value]

        return TRTState(_IO(conv=pair("conv_state"), ssm=pair("ssm_state")))

    def _out(self, batch: int) -> tuple[Tensor, Tensor, Tensor]:
        if batch not in self._outputs:
            d = self.device
            self._outputs[batch] = (
                torch.empty(batch, device=d),  # apex (B,)
                torch.empty(batch, 2, device=d),  # kind_logits (B, 2)
                torch.empty(batch, 3, device=d),  # emotion_logits (B, 3)
            )
            self._ones[batch] = torch.ones(batch, device=d)
        return self._outputs[batch]

    def step_device(
        self, x: Tensor, state: TRTState, valid: Tensor | None = None
    ) -> tuple[Tensor, Tensor, TRTState]:
        """x (B, F) CUDA float32 → apex (B,), probabilities (B, 3), state (swapped buffers)."""
        batch = x.shape[0]
        apex, kind, emotion = self._out(batch)
        v = self._ones[batch] if valid is None else valid.to(torch.float32)
        cur, nxt = state.flip, 1 - state.flip
        tensors = {
            "x": x.contiguous(),
            "conv_state": state.io.conv[cur],
            "ssm_state": state.io.ssm[cur],
            "valid": v,
            "apex": apex,
            "kind_logits": kind,
            "emotion_logits": emotion,
            "conv_state_out": state.io.conv[nxt],
            "ssm_state_out": state.io.ssm[nxt],
        }
        for name in INPUT_NAMES:
            self.context.set_input_shape(name, tuple(tensors[name].shape))
        for name, t in tensors.items():
            self.context.set_tensor_address(name, t.data_ptr())
        if not self.context.execute_async_v3(torch.cuda.current_stream().cuda_stream):
            raise TensorRTError("execute_async_v3 failed")
        state.flip = nxt
        return apex, torch.softmax(emotion, dim=-1), state

    def step(
        self, x: np.ndarray, state: TRTState, valid: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, TRTState]:
        xt = torch.from_numpy(np.ascontiguousarray(x, np.float32)).to(self.device)
        vt = None if valid is None else torch.from_numpy(np.asarray(valid, np.float32)).cuda()
        apex, probs, state = self.step_device(xt, state, vt)
        return apex.cpu().numpy(), probs.cpu().numpy(), state

    def reset_streams(self, state: TRTState, mask: np.ndarray) -> TRTState:
        gap = torch.from_numpy(np.asarray(mask, bool)).to(self.device)  # (B,)
        state.io.conv[state.flip][:, gap] = 0
        state.io.ssm[state.flip][:, gap] = 0
        return state


def build_engine(
    onnx_path: str | Path, max_streams: int, timing_cache: Path, log: Callable[[str], None]
) -> bytes:
    """Parse the ONNX file into a strongly typed network and build a serialized engine."""
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 0
    if hasattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED"):
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(Path(onnx_path).read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise TensorRTError(f"TensorRT cannot parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
    profile = builder.create_optimization_profile()
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        axis = 1 if tensor.name in ("conv_state", "ssm_state") else 0  # the streams axis
        shapes = []
        for b in (1, min(64, max_streams), max_streams):
            shape = list(tensor.shape)
            shape[axis] = b
            shapes.append(tuple(shape))
        profile.set_shape(tensor.name, *shapes)
    config.add_optimization_profile(profile)
    cache_bytes = timing_cache.read_bytes() if timing_cache.is_file() else b""
    cache = config.create_timing_cache(cache_bytes)
    config.set_timing_cache(cache, ignore_mismatch=True)
    log(f"TensorRT {trt.__version__}: building {Path(onnx_path).name} for 1..{max_streams} streams")
    try:
        serialized = builder.build_serialized_network(network, config)
    except Exception as exc:  # out of GPU memory and similar surface as exceptions or None
        raise TensorRTError(f"TensorRT build failed: {exc}") from None
    if serialized is None:
        raise TensorRTError("TensorRT build failed (see the TensorRT log above)")
    _write_atomic(timing_cache, bytes(config.get_timing_cache().serialize()))
    return bytes(serialized)
