"""Spotting + recognition model over feature rows: the ME-TST idea (temporal state transition).

ME-TST (Zou, Guo et al., ICASSP 2025) replaces sliding-window classification with video-level
regression: a causal state-space model reads the whole feature sequence and regresses, per
frame, a Gaussian-shaped "apex score" that peaks at each expression's apex; the same states
also classify the expression (micro / macro) and its emotion, so spotting and recognition
share one model.

    features (B, L, F) ─ (x - mean) / std ─ zero invalid rows ─ stem ─ N × SelectiveSSM
        ─ RMSNorm ─┬─ apex    Linear → sigmoid   (B, L)      regressed to the Gaussian target
                   ├─ kind    Linear             (B, L, 2)   micro / macro logits
                   └─ emotion Linear             (B, L, 3)   negative / positive / surprise

The stem is a Linear over region rows, or for the node spotter the spatial encoder of
`engines/models/encoder.py` (per-node MLP, facial-group pooling); either is per frame and keeps
no state. Streaming state (the SSM layout of `engines/models/ssm.py`, stacked over layers):

    SpotterState.conv  (n_layers, B, d_inner, d_conv - 1)
    SpotterState.ssm   (n_layers, B, d_inner, d_state)

`forward(x, state)` over a sequence and `step(x_t, state)` frame by frame give the same outputs
and the same final state; `init_state(batch)` (zeros) starts a stream, and `reset_state` zeroes
the streams that had a gap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from engines.labels import EMOTIONS, KINDS
from engines.models.encoder import NodeEncoder
from engines.models.ssm import RMSNorm, SelectiveSSM, SSMConfig, SSMState

IGNORE = -100  # label of frames outside every interval: no kind / emotion loss there


@dataclass
class SpotterConfig:
    """Sizes of a `Spotter`; `ssm` is derived from the fields above it."""

    n_features: int
    d_model: int = 64
    n_layers: int = 2
    n_kinds: int = len(KINDS)
    n_emotions: int = len(EMOTIONS)
    d_state: int = 16
    expand: int = 2
    d_conv: int = 4
    chunk_size: int = 32
    # The node spotter (engines/node_inputs.py): the first sum(group_sizes) × node_width
    # inputs are per-node rows read by a spatial encoder (engines/models/encoder.py); empty
    # group_sizes keeps the plain Linear stem of the region-row spotter.
    group_sizes: tuple[int, ...] = ()
    node_width: int = 0
    d_node: int = 16
    ssm: SSMConfig = field(init=False)

    def __post_init__(self) -> None:
        self.ssm = SSMConfig(
            d_model=self.d_model,
            d_state=self.d_state,
            expand=self.expand,
            d_conv=self.d_conv,
            chunk_size=self.chunk_size,
        )


class SpotterState(NamedTuple):
    """Streaming state of a `Spotter`: per-layer `SSMState`s stacked on a leading axis."""

    conv: Tensor  # (n_layers, B, d_inner, d_conv - 1)
    ssm: Tensor  # (n_layers, B, d_inner, d_state)


class SpotterOutput(NamedTuple):
    """Per-frame heads; (B, L, ...) from `forward`, (B, ...) from `step`."""

    apex: Tensor  # (B, L) in [0, 1]
    kind_logits: Tensor  # (B, L, n_kinds)
    emotion_logits: Tensor  # (B, L, n_emotions)


class SpotterTargets(NamedTuple):
    """Per-frame training targets of one sequence, built by `targets`."""

    apex: Tensor  # (L,) float, Gaussian bumps peaking at 1 on each apex
    kind: Tensor  # (L,) long, kind index inside an interval, IGNORE outside
    emotion: Tensor  # (L,) long, emotion index inside an interval, IGNORE outside or unknown


@dataclass(frozen=True)
class Interval:
    """One annotated expression, inclusive frame indices; kind/emotion index KINDS/EMOTIONS."""

    onset: int
    apex: int
    offset: int
    kind: int = 0
    emotion: int = IGNORE


class Spotter(nn.Module):
    """Causal SSM over feature rows with per-frame apex, kind and emotion heads.

    Example:
        >>> model = Spotter(SpotterConfig(n_features=24))
        >>> out, state = model(torch.randn(1, 300, 24))            # whole clip
        >>> state = model.init_state(1)
        >>> out_t, state = model.step(torch.randn(1, 24), state)    # live, one frame
    """

    def __init__(self, config: SpotterConfig) -> None:
        super().__init__()
        self.config = c = config
        # Buffers, not parameters: the training set's statistics travel with the weights.
        self.register_buffer("feature_mean", torch.zeros(c.n_features))
        self.register_buffer("feature_std", torch.ones(c.n_features))
        if c.group_sizes:
            n_extra = c.n_features - sum(c.group_sizes) * c.node_width
            self.stem = NodeEncoder(c.group_sizes, c.node_width, n_extra, c.d_node, c.d_model)
        else:
            self.stem = nn.Linear(c.n_features, c.d_model)
        self.layers = nn.ModuleList(SelectiveSSM(c.ssm) for _ in range(c.n_layers))
        self.norm = RMSNorm(c.d_model)
        # One Linear for the three heads (apex | kind | emotion): fewer ops per frame.
        self.head = nn.Linear(c.d_model, 1 + c.n_kinds + c.n_emotions)

    def set_normalization(self, mean: Tensor, std: Tensor, eps: float = 1e-6) -> None:
        """Per-feature mean and std (F,) of the training features; std is floored at eps."""
        with torch.no_grad():
            self.feature_mean.copy_(torch.as_tensor(mean, dtype=self.feature_mean.dtype))
            self.feature_std.copy_(
                torch.as_tensor(std, dtype=self.feature_std.dtype).clamp_min(eps)
            )

    def init_state(self, batch: int) -> SpotterState:
        """Zeros for `batch` streams, on the model's device and dtype."""
        c, p = self.config.ssm, self.head.weight
        n = self.config.n_layers
        return SpotterState(
            conv=p.new_zeros(n, batch, c.d_inner, c.d_conv - 1),
            ssm=p.new_zeros(n, batch, c.d_inner, c.d_state),
        )

    @staticmethod
    def reset_state(state: SpotterState, reset: Tensor) -> SpotterState:
        """Zero the streams where `reset` (B,) is True (a gap); equal to a fresh start there."""
        gap = reset.to(torch.bool)[None, :, None, None]  # (1, B, 1, 1)
        return SpotterState(
            conv=torch.where(gap, torch.zeros_like(state.conv), state.conv),
            ssm=torch.where(gap, torch.zeros_like(state.ssm), state.ssm),
        )

    def _embed(self, x: Tensor, valid: Tensor | None) -> Tensor:
        # (..., F) → (..., d_model). Invalid rows become zero input (where(): NaNs there too).
        x = (x - self.feature_mean) / self.feature_std  # (..., F)
        if valid is not None:
            x = torch.where(valid[..., None].to(torch.bool), x, torch.zeros_like(x))
        return self.stem(x)  # (..., d_model)

    def _heads(self, h: Tensor) -> SpotterOutput:
        c = self.config
        logits = self.head(self.norm(h))  # (..., 1 + n_kinds + n_emotions)
        apex, kind, emotion = torch.split(logits, [1, c.n_kinds, c.n_emotions], dim=-1)
        return SpotterOutput(
            apex=torch.sigmoid(apex[..., 0]),  # (...)
            kind_logits=kind,  # (..., n_kinds)
            emotion_logits=emotion,  # (..., n_emotions)
        )

    def forward(
        self, x: Tensor, state: SpotterState | None = None, valid: Tensor | None = None
    ) -> tuple[SpotterOutput, SpotterState]:
        """Feature rows x (B, L, F), optional valid (B, L) bool → per-frame heads, final state."""
        if state is None:
            state = self.init_state(x.shape[0])
        h = self._embed(x, valid)  # (B, L, d_model)
        convs, ssms = [], []
        for layer, conv, ssm in zip(self.layers, state.conv, state.ssm, strict=True):
            h, s = layer(h, SSMState(conv, ssm))  # (B, L, d_model)
            convs.append(s.conv)
            ssms.append(s.ssm)
        return self._heads(h), SpotterState(torch.stack(convs), torch.stack(ssms))

    def step(
        self, x: Tensor, state: SpotterState, valid: Tensor | None = None
    ) -> tuple[SpotterOutput, SpotterState]:
        """One frame x (B, F), optional valid (B,) bool → heads (B, ...), next state."""
        h = self._embed(x, valid)  # (B, d_model)
        convs, ssms = [], []
        for layer, conv, ssm in zip(self.layers, state.conv, state.ssm, strict=True):
            h, s = layer.step(h, SSMState(conv, ssm))  # (B, d_model)
            convs.append(s.conv)
            ssms.append(s.ssm)
        return self._heads(h), SpotterState(torch.stack(convs), torch.stack(ssms))


def targets(
    intervals: Sequence[Interval | tuple[int, int, int]],
    length: int,
    sigma_scale: float = 0.25,
    min_sigma: float = 1.0,
    cutoff_sigmas: float = 3.0,
) -> SpotterTargets:
    """Per-frame targets for a length-L sequence from (onset, apex, offset) intervals.

    The apex target is exp(-(t - apex)² / 2σ²) with σ = max(min_sigma, sigma_scale · (offset -
    onset + 1)), exactly 0 beyond cutoff_sigmas · σ, and the max over overlapping intervals; it
    is 1 on every apex. Kind and emotion labels cover [onset, offset] (later intervals win
    where they overlap) and are IGNORE elsewhere. Plain tuples mean kind 0 and no emotion.
    """
    t = torch.arange(length, dtype=torch.float32)  # (L,)
    apex = torch.zeros(length)  # (L,)
    kind = torch.full((length,), IGNORE, dtype=torch.long)  # (L,)
    emotion = torch.full((length,), IGNORE, dtype=torch.long)  # (L,)
    for item in intervals:
        iv = item if isinstance(item, Interval) else Interval(*item)
        if not iv.onset <= iv.apex <= iv.offset:
            raise ValueError(f"need onset <= apex <= offset, got {iv}")
        sigma = max(min_sigma, sigma_scale * (iv.offset - iv.onset + 1))
        bump = torch.exp(-0.5 * ((t - iv.apex) / sigma) ** 2)  # (L,)
        bump = torch.where((t - iv.apex).abs() <= cutoff_sigmas * sigma, bump, 0.0)
        apex = torch.maximum(apex, bump)
        span = slice(max(iv.onset, 0), max(iv.offset + 1, 0))
        kind[span] = iv.kind
        emotion[span] = iv.emotion
    return SpotterTargets(apex, kind, emotion)


class LossTerms(NamedTuple):
    total: Tensor  # () weighted sum, the one to backpropagate
    apex: Tensor  # () masked MSE of the apex score
    kind: Tensor  # () masked CE of micro/macro
    emotion: Tensor  # () masked CE of the emotion
    top: Tensor  # () mean square of the highest scores far from any expression


def _masked_ce(logits: Tensor, labels: Tensor, mask: Tensor) -> Tensor:
    # Mean CE over valid, labelled frames; 0 (not NaN) when there are none.
    labels = torch.where(mask, labels, IGNORE)  # (B, L)
    ce = F.cross_entropy(
        logits.flatten(0, 1), labels.flatten(), ignore_index=IGNORE, reduction="sum"
    )
    return ce / (labels != IGNORE).sum().clamp_min(1)


def loss_terms(
    out: SpotterOutput,
    target_apex: Tensor,
    target_kind: Tensor,
    target_emotion: Tensor,
    mask: Tensor,
    apex_weight: float = 0.9,
    emotion_weight: float = 0.1,
    kind_weight: float = 0.05,
    pos_weight: float = 1.0,
    top_weight: float = 0.0,
    top_share: float = 0.02,
    top_guard: int = 25,
) -> LossTerms:
    """ME-TST loss ≈ 0.9·MSE(apex) + 0.1·CE(emotion), plus a small CE for micro/macro.

    Args:
        out: `Spotter` output over (B, L). target_apex (B, L) float; target_kind and
            target_emotion (B, L) long with IGNORE where undefined; mask (B, L) bool, False on
            invalid rows, which contribute nothing (their targets may hold anything, even NaN).
        pos_weight: weight of the apex error on frames inside a bump (target > 0.05).
        top_weight, top_share, top_guard: weight of `top_negative_term` (0: off) and its
            arguments.
    """
    mask = mask.to(torch.bool)  # (B, L)
    target_apex = torch.where(mask, target_apex, 0.0)  # NaN-safe below
    weight = torch.where(target_apex > 0.05, pos_weight, 1.0)  # (B, L)
    sq = torch.where(mask, weight * (out.apex - target_apex) ** 2, 0.0)  # (B, L)
    apex = sq.sum() / mask.sum().clamp_min(1)
    kind = _masked_ce(out.kind_logits, target_kind, mask)
    emotion = _masked_ce(out.emotion_logits, target_emotion, mask)
    total = apex_weight * apex + emotion_weight * emotion + kind_weight * kind
    top = out.apex.new_zeros(())
    if top_weight > 0:
        top = top_negative_term(out.apex, target_apex, mask, top_share, top_guard)
        total = total + top_weight * top
    return LossTerms(total, apex, kind, emotion, top)


def top_negative_term(
    apex: Tensor, target_apex: Tensor, mask: Tensor, share: float, guard: int
) -> Tensor:
    """Mean square of each sequence's highest apex scores on frames far from any expression.

    A fixed threshold meets the highest-scoring frames with nothing there first, and a mean
    error over all frames barely sees them (most frames score near 0 anyway): this term puts
    the gradient on them. Far = valid and more than ``guard`` frames from any frame with
    target > 0.05 (a bump's tails and its neighbours are not false alarms); the top
    ``share`` of each sequence's length (at least one frame) counts.

    Args:
        apex: (B, L) scores in [0, 1]; target_apex (B, L), 0 on invalid rows; mask (B, L) bool.
    Returns:
        () tensor; 0 where no sequence has such frames.
    """
    near = (target_apex > 0.05).to(apex.dtype)[:, None]  # (B, 1, L)
    near = F.max_pool1d(near, 2 * guard + 1, stride=1, padding=guard)[:, 0] > 0  # (B, L)
    far = mask & ~near  # (B, L)
    k = max(1, int(share * apex.shape[1]))
    scores = torch.where(far, apex, -1.0)  # (B, L); -1 never beats a real score
    top = scores.topk(min(k, apex.shape[1]), dim=1).values  # (B, k)
    counted = top >= 0
    return torch.where(counted, top**2, 0.0).sum() / counted.sum().clamp_min(1)


def loss(
    out: SpotterOutput,
    target_apex: Tensor,
    target_kind: Tensor,
    target_emotion: Tensor,
    mask: Tensor,
) -> Tensor:
    """The scalar training loss of `loss_terms` with its default weights."""
    return loss_terms(out, target_apex, target_kind, target_emotion, mask).total
