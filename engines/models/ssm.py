"""Selective state-space block (Mamba, Gu & Dao 2023) in pure PyTorch, with a per-frame `step`.

Map to the paper (Algorithm 2, "SSM + Selection", and Figure 3, the Mamba block):

    x ─ RMSNorm ─ in_proj ─┬─ u ─ causal depthwise conv1d ─ SiLU ─ selective SSM ┐
                            └─ z ──────────────────────── SiLU ────────────────── ⊙ ─ out_proj ─ + x

    selective SSM, per channel d and state index n (A is diagonal, so channels never mix):
        Δ_t  = softplus(dt_proj(x_proj_Δ(x_t)))          input-dependent step size   (B, L, D)
        B_t, C_t = x_proj_B(x_t), x_proj_C(x_t)           input-dependent B and C     (B, L, N)
        A    = -exp(A_log)                                 fixed diagonal, negative    (D, N)
        Ā_t  = exp(Δ_t A)                                  zero-order hold for A
        B̄_t  ≈ Δ_t B_t                                     Euler step for B (as in Mamba)
        h_t  = Ā_t ⊙ h_{t-1} + B̄_t x_t                     state                       (B, D, N)
        y_t  = C_t · h_t + D ⊙ x_t                         D is the skip connection    (B, L, D)

Three scans compute the same recurrence:
- `selective_scan_ref`: the textbook loop over t, one step per iteration (the test oracle).
- `selective_scan`: chunked. Within a chunk of T frames the log-decays are summed,
  S_t = Σ_{s≤t} Δ_s A, and h_t = exp(S_t) ⊙ (h_0 + Σ_{s≤t} exp(-S_s) ⊙ B̄_s x_s), i.e. two
  cumulative sums instead of T dependent steps; the chunk's last state carries into the next.
  exp(-S_s) grows with the chunk, so the chunk is computed in float64 and each log-decay is
  clamped at `LOG_DECAY_MIN` = -20 (exp(-20) ≈ 2e-9: a state that decays that fast in one frame
  is reset either way; the clamp changes h by < 2e-9·|h|, below float32 resolution). With
  T ≤ 32 every exponent stays within ±640, inside float64's ±709.
- `SelectiveSSM.step`: one frame, with an explicit state (below), in float32, no clamp.

State layout (one place; `engines/models/spotter.py` stacks it per layer, backends pass it through):

    SSMState.conv  (B, d_inner, d_conv - 1)  the last d_conv-1 conv inputs, oldest first
    SSMState.ssm   (B, d_inner, d_state)     h_t of the selective scan

A fresh stream starts from `init_state` (zeros), never None, so the step graph exports to ONNX
with fixed inputs; a gap in the stream is a reset to zeros, which equals a fresh start.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# exp(-20) ≈ 2e-9: clamping a one-frame log-decay here is invisible in float32 (see docstring).
LOG_DECAY_MIN = -20.0
# float64 exp overflows past ±709; a chunk sums up to chunk_size log-decays of at least -20.
_MAX_CHUNK = int(700 // -LOG_DECAY_MIN)


class SSMState(NamedTuple):
    """Streaming state of one `SelectiveSSM`; a tuple of tensors, so it exports as graph I/O."""

    conv: Tensor  # (B, d_inner, d_conv - 1)
    ssm: Tensor  # (B, d_inner, d_state)


@dataclass
class SSMConfig:
    """Sizes and initialisation of a `SelectiveSSM` block (defaults follow Mamba)."""

    d_model: int = 64
    d_state: int = 16
    expand: int = 2
    d_conv: int = 4
    dt_rank: int | None = None  # None: ceil(d_model / 16), as in Mamba
    dt_min: float = 1e-3
    dt_max: float = 1e-1
    dt_init_floor: float = 1e-4
    dt_scale: float = 1.0
    conv_bias: bool = True
    bias: bool = False
    norm_eps: float = 1e-5
    chunk_size: int = 32
    d_inner: int = field(init=False)

    def __post_init__(self) -> None:
        self.d_inner = self.expand * self.d_model
        if self.dt_rank is None:
            self.dt_rank = math.ceil(self.d_model / 16)
        if not 1 <= self.chunk_size <= _MAX_CHUNK:
            raise ValueError(f"chunk_size must be in [1, {_MAX_CHUNK}], got {self.chunk_size}")
        if self.d_conv < 2:
            raise ValueError(f"d_conv must be >= 2, got {self.d_conv}")


def selective_scan_ref(
    x: Tensor,
    delta: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Tensor | None = None,
    h0: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Textbook selective scan: one recurrence step per frame in a Python loop (the oracle).

    Args:
        x: inputs (B, L, D); delta: step sizes Δ > 0 (B, L, D); A: diagonal (D, N), negative;
        B, C: (B, L, N); D: skip (D,) or None; h0: initial state (B, D, N) or None for zeros.

    Returns:
        y (B, L, D) and the final state h_L (B, D, N).
    """
    batch, length, d_inner = x.shape
    h = x.new_zeros(batch, d_inner, A.shape[-1]) if h0 is None else h0  # (B, D, N)
    ys = []
    for t in range(length):
        decay = torch.exp(delta[:, t, :, None] * A)  # (B, D, N)   Ā_t = exp(Δ_t A)
        drive = (delta[:, t] * x[:, t])[:, :, None] * B[:, t, None, :]  # (B, D, N)  B̄_t x_t
        h = decay * h + drive  # (B, D, N)
        ys.append(torch.einsum("bdn,bn->bd", h, C[:, t]))  # (B, D)
    y = torch.stack(ys, dim=1) if ys else x.new_zeros(x.shape)  # (B, L, D)
    if D is not None:
        y = y + x * D  # (B, L, D)
    return y, h


def selective_scan(
    x: Tensor,
    delta: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Tensor | None = None,
    h0: Tensor | None = None,
    chunk_size: int = 32,
) -> tuple[Tensor, Tensor]:
    """Chunked selective scan: cumulative sums of log-decays within chunks, a carry between.

    Same arguments and results as `selective_scan_ref`; agrees with it to float32 rounding
    (see the module docstring for the float64 chunk and the log-decay clamp).
    """
    if not 1 <= chunk_size <= _MAX_CHUNK:
        raise ValueError(f"chunk_size must be in [1, {_MAX_CHUNK}], got {chunk_size}")
    batch, length, d_inner = x.shape
    wide = torch.float64
    A64 = A.to(wide)  # (D, N)
    h = (
        x.new_zeros(batch, d_inner, A.shape[-1], dtype=wide) if h0 is None else h0.to(wide)
    )  # (B, D, N)
    ys = []
    for start in range(0, length, chunk_size):
        chunk = slice(start, start + chunk_size)
        dt = delta[:, chunk].to(wide)  # (B, T, D)
        log_decay = (dt[..., None] * A64).clamp(min=LOG_DECAY_MIN)  # (B, T, D, N)
        s = log_decay.cumsum(dim=1)  # (B, T, D, N)   S_t = Σ_{s≤t} Δ_s A
        drive = (dt * x[:, chunk].to(wide))[..., None] * B[:, chunk, None, :].to(wide)  # (B,T,D,N)
        # h_t = exp(S_t) (h_0 + Σ_{s≤t} exp(-S_s) B̄_s x_s): both factors stay finite in float64.
        hs = torch.exp(s) * (h[:, None] + (torch.exp(-s) * drive).cumsum(dim=1))  # (B, T, D, N)
        h = hs[:, -1]  # (B, D, N)
        ys.append(torch.einsum("btdn,btn->btd", hs, C[:, chunk].to(wide)))  # (B, T, D)
    y = torch.cat(ys, dim=1).to(x.dtype) if ys else x.new_zeros(x.shape)  # (B, L, D)
    if D is not None:
        y = y + x * D  # (B, L, D)
    return y, h.to(x.dtype)


class RMSNorm(nn.Module):
    """x / rms(x) · w over the last axis, written out: the TorchScript ONNX exporter has no
    aten::rms_norm, and on CPU the fused op is no faster at these sizes."""

    def __init__(self, d: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.rsqrt(torch.mean(x * x, dim=-1, keepdim=True) + self.eps) * self.weight


class SelectiveSSM(nn.Module):
    """Pre-norm residual Mamba block: `x + mixer(RMSNorm(x))`, causal in time.

    `forward` runs a whole sequence (optionally continuing from a state) and `step` one frame;
    for the same inputs and starting state they return the same outputs and final state.

    Example:
        >>> block = SelectiveSSM(SSMConfig(d_model=64))
        >>> y, state = block(torch.randn(2, 100, 64))          # (2, 100, 64)
        >>> y_t, state = block.step(torch.randn(2, 64), state)  # continues the stream
    """

    def __init__(self, config: SSMConfig) -> None:
        super().__init__()
        self.config = c = config
        self.norm = RMSNorm(c.d_model, c.norm_eps)
        self.in_proj = nn.Linear(c.d_model, 2 * c.d_inner, bias=c.bias)
        # Depthwise (groups = channels); causal because forward left-pads with the conv state.
        self.conv1d = nn.Conv1d(c.d_inner, c.d_inner, c.d_conv, groups=c.d_inner, bias=c.conv_bias)
        self.x_proj = nn.Linear(c.d_inner, c.dt_rank + 2 * c.d_state, bias=False)
        self.dt_proj = nn.Linear(c.dt_rank, c.d_inner, bias=True)
        # S4D-real init: A_n = -(n + 1), the same for every channel.
        A = torch.arange(1, c.d_state + 1, dtype=torch.float32).repeat(c.d_inner, 1)  # (D, N)
        self.A_log = nn.Parameter(torch.log(A))
        self.D = nn.Parameter(torch.ones(c.d_inner))
        self.out_proj = nn.Linear(c.d_inner, c.d_model, bias=c.bias)
        self._init_dt()

    def _init_dt(self) -> None:
        # Mamba: Δ starts log-uniform in [dt_min, dt_max], so channels see a range of time scales.
        c = self.config
        std = c.dt_rank**-0.5 * c.dt_scale
        nn.init.uniform_(self.dt_proj.weight, -std, std)
        u = torch.rand(c.d_inner)
        dt = torch.exp(u * (math.log(c.dt_max) - math.log(c.dt_min)) + math.log(c.dt_min))
        dt = dt.clamp(min=c.dt_init_floor)  # (D,)
        with torch.no_grad():
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # softplus⁻¹(dt)

    def init_state(
        self, batch: int, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> SSMState:
        """Zeros: the state of a fresh stream (and of a stream after a gap)."""
        c = self.config
        dtype = dtype or self.A_log.dtype
        device = device or self.A_log.device
        return SSMState(
            conv=torch.zeros(batch, c.d_inner, c.d_conv - 1, device=device, dtype=dtype),
            ssm=torch.zeros(batch, c.d_inner, c.d_state, device=device, dtype=dtype),
        )

    def _ssm_params(self, u: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Δ, B, C from the conv output u (..., D): the "selection" of Mamba."""
        c = self.config
        dbc = self.x_proj(u)  # (..., R + 2N)
        dt, B, C = torch.split(dbc, [c.dt_rank, c.d_state, c.d_state], dim=-1)
        delta = F.softplus(self.dt_proj(dt))  # (..., D)
        return delta, B, C

    def forward(self, x: Tensor, state: SSMState | None = None) -> tuple[Tensor, SSMState]:
        """Whole sequence x (B, L, d_model) → (y (B, L, d_model), final state)."""
        c = self.config
        batch, length, _ = x.shape
        if state is None:
            state = self.init_state(batch, x.device, x.dtype)
        xz = self.in_proj(self.norm(x))  # (B, L, 2D)
        u, z = xz.chunk(2, dim=-1)  # (B, L, D) each
        u_padded = torch.cat([state.conv, u.transpose(1, 2)], dim=-1)  # (B, D, K-1+L)
        conv_state = u_padded[:, :, length:]  # (B, D, K-1)   the last K-1 inputs
        u = F.silu(F.conv1d(u_padded, self.conv1d.weight, self.conv1d.bias, groups=c.d_inner))
        u = u.transpose(1, 2)  # (B, L, D)
        delta, B, C = self._ssm_params(u)  # (B, L, D), (B, L, N), (B, L, N)
        A = -torch.exp(self.A_log)  # (D, N)
        y, h = selective_scan(u, delta, A, B, C, self.D, state.ssm, c.chunk_size)  # (B, L, D)
        y = self.out_proj(y * F.silu(z))  # (B, L, d_model)
        return x + y, SSMState(conv_state, h)

    def step(self, x: Tensor, state: SSMState) -> tuple[Tensor, SSMState]:
        """One frame x (B, d_model) → (y (B, d_model), next state); the streaming path."""
        xz = self.in_proj(self.norm(x))  # (B, 2D)
        u, z = xz.chunk(2, dim=-1)  # (B, D) each
        window = torch.cat([state.conv, u[:, :, None]], dim=-1)  # (B, D, K)
        u = (window * self.conv1d.weight[:, 0]).sum(-1)  # (B, D)
        if self.conv1d.bias is not None:
            u = u + self.conv1d.bias  # (B, D)
        u = F.silu(u)  # (B, D)
        delta, B, C = self._ssm_params(u)  # (B, D), (B, N), (B, N)
        A = -torch.exp(self.A_log)  # (D, N)
        decay = torch.exp(delta[:, :, None] * A)  # (B, D, N)
        h = torch.addcmul(decay * state.ssm, (delta * u)[:, :, None], B[:, None, :])  # (B, D, N)
        y = torch.addcmul((h * C[:, None, :]).sum(-1), self.D, u)  # (B, D)   C_t · h_t + D x_t
        y = self.out_proj(y * F.silu(z))  # (B, d_model)
        return x + y, SSMState(window[:, :, 1:], h)
