"""The spotter's step on a CUDA GPU with torch, optionally replayed as a CUDA graph.

    engine = TorchCudaEngine(model, cuda_graphs=True)
    state = engine.init_state(n_streams)            # device buffers, FP32
    apex, emotion_probs, state = engine.step(x, state)   # x (B, F) numpy or CUDA tensor

The state lives on the GPU between steps (`DeviceState`): only the feature rows go up and the
(B,) apex scores and (B, 3) probabilities come down, ~16 bytes per stream and frame.

With `cuda_graphs=True` one step for B streams is captured once per B as a CUDA graph whose
last kernels write the next state back into the same buffers: a step is then one input copy,
one graph launch and one output copy, with no Python per layer and no allocation. The graph
owns its state buffers, so `step` updates the state in place and returns the same object —
unlike the numpy engines, an earlier state is not kept. Eager mode (`cuda_graphs=False`) is
functional like `TorchEngine` and is the reference the graph is tested against (same kernels,
same order: max abs difference 0 expected, 1e-6 allowed).

Nothing here imports CUDA at module import; `cuda_available()` says whether a GPU is usable.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from engines.models.spotter import Spotter, SpotterState


class DeviceState(NamedTuple):
    """Streaming state of every stream on the GPU (the `SpotterState` layout), FP32."""

    conv: Tensor  # (n_layers, B, d_inner, d_conv - 1)
    ssm: Tensor  # (n_layers, B, d_inner, d_state)


def cuda_available() -> tuple[bool, str]:
    """(usable, why): a CUDA device torch can allocate on, with its name, or the reason not."""
    if not torch.cuda.is_available():
        return False, (
            f"torch {torch.__version__} sees no CUDA device (needs an NVIDIA GPU and a CUDA "
            "build of torch)"
        )
    try:
        torch.zeros(1, device="cuda")
    except RuntimeError as exc:  # a driver/device error at first allocation
        return False, f"CUDA device not usable: {exc}"
    return True, torch.cuda.get_device_name(0)


class _Graph:
    """One captured step for a fixed batch: static input, state and output buffers."""

    def __init__(self, model: Spotter, batch: int, n_features: int, device: torch.device) -> None:
        self.x = torch.zeros(batch, n_features, device=device)  # (B, F)
        self.valid = torch.ones(batch, dtype=torch.bool, device=device)  # (B,)
        s = model.init_state(batch)
        self.state = DeviceState(s.conv, s.ssm)
        side = torch.cuda.Stream(device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side), torch.inference_mode():
            for _ in range(3):  # warm-up outside the graph: cuBLAS handles, lazy init
                self._body(model)
        torch.cuda.current_stream(device).wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph), torch.inference_mode():
            self.apex, self.probs = self._body(model)
        self.state.conv.zero_()
        self.state.ssm.zero_()

    def _body(self, model: Spotter) -> tuple[Tensor, Tensor]:
        out, nxt = model.step(self.x, SpotterState(self.state.conv, self.state.ssm), self.valid)
        # The next state goes back into the same buffers: the graph replays in place.
        self.state.conv.copy_(nxt.conv)
        self.state.ssm.copy_(nxt.ssm)
        return out.apex, torch.softmax(out.emotion_logits, dim=-1)  # (B,), (B, 3)


class TorchCudaEngine:
    """`Spotter.step` on a CUDA device; state kept there between steps."""

    name = "torch-cuda"
    reason = ""

    def __init__(self, model: Spotter, device: str = "cuda", cuda_graphs: bool = True) -> None:
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.cuda_graphs = cuda_graphs
        self.n_features = model.config.n_features
        self._graphs: dict[int, _Graph] = {}

    def init_state(self, batch: int) -> DeviceState:
        """Zeros for `batch` streams. With CUDA graphs these are the graph's own buffers."""
        if self.cuda_graphs:
            graph = self._graph(batch)
            graph.state.conv.zero_()
            graph.state.ssm.zero_()
            return graph.state
        s = self.model.init_state(batch)
        return DeviceState(s.conv, s.ssm)

    def _graph(self, batch: int) -> _Graph:
        if batch not in self._graphs:
            self._graphs[batch] = _Graph(self.model, batch, self.n_features, self.device)
        return self._graphs[batch]

    def step_device(
        self, x: Tensor, state: DeviceState, valid: Tensor | None = None
    ) -> tuple[Tensor, Tensor, DeviceState]:
        """x (B, F) CUDA → apex (B,), probabilities (B, 3), next state; all on the device and
        not synchronised (the caller's next host read waits for it)."""
        if not self.cuda_graphs:
            with torch.inference_mode():
                st = SpotterState(state.conv, state.ssm)
                out, nxt = self.model.step(x, st, valid)
                probs = torch.softmax(out.emotion_logits, dim=-1)  # (B, 3)
            return out.apex, probs, DeviceState(nxt.conv, nxt.ssm)
        graph = self._graph(x.shape[0])
        if state is not graph.state:
            raise ValueError("with CUDA graphs, pass the state init_state returned for this batch")
        graph.x.copy_(x, non_blocking=True)
        if valid is None:
            graph.valid.fill_(True)
        else:
            graph.valid.copy_(valid, non_blocking=True)
        graph.graph.replay()
        return graph.apex, graph.probs, graph.state

    def step(
        self, x: np.ndarray, state: DeviceState, valid: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, DeviceState]:
        """Same contract as `TorchEngine.step` (numpy rows in, numpy scores out)."""
        xt = torch.from_numpy(np.ascontiguousarray(x, np.float32)).to(self.device)  # (B, F)
        vt = None if valid is None else torch.from_numpy(np.asarray(valid, bool)).to(self.device)
        apex, probs, nxt = self.step_device(xt, state, vt)
        return apex.cpu().numpy(), probs.cpu().numpy(), nxt

    def reset_streams(self, state: DeviceState, mask: np.ndarray) -> DeviceState:
        """Zero the streams where mask (B,) is True, in place (the graph reads these buffers)."""
        gap = torch.from_numpy(np.asarray(mask, bool)).to(self.device)  # (B,)
        with torch.inference_mode():  # eager states are inference tensors
            state.conv[:, gap] = 0
            state.ssm[:, gap] = 0
        return state
