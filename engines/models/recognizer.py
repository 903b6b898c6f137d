"""Recognizer for a spotted interval: the MPFNet idea (multi-prior fusion, progressive training).

MPFNet (Ma et al., 2025) recognises a micro-expression from its onset→apex motion with two
complementary I3D-style encoders with coordinate attention (CA): a Generic Feature Encoder (GFE)
and an Advanced Feature Encoder (AFE) that carries prior knowledge, fused either in parallel
(MPFNet-P) or hierarchically (MPFNet-C), and trained progressively: encoders first, fusion after.
Here, at a size a 2-core CPU trains in minutes:

    stack: flow (B, 2, T, S, S) aligned-face px, ROI mask (B, S, S) from stream/face/flow_stack.py
      │ normalize: flow / robust magnitude (per sample)
      ├─ general  Encoder3d(2 ch: dx, dy)            g1 (B,16,T,S/2,S/2) g2 (B,32,T,S/4,S/4)
      │                                               g3 (B,48,T/2,S/8,S/8) → pool → (B, 48)
      └─ prior    Encoder3d(3 ch: dx·m, dy·m, m)      a1, a2, a3 alike; the ROI/AU prior: it
                                                      sees motion only where the facial ROIs
                                                      are, and is pretrained with an AU head
    -P  parallel:      Linear(concat(pool g3, pool a3)) → MLP → 3 logits
    -C  hierarchical:  f1 = fuse(g1, a1); f2 = fuse(g2, a2, down(f1)); f3 = fuse(g3, a3, down(f2))
                       → CA → pool → Linear → 3 logits          (fuse: 1×1×1 conv + BN + ReLU)

Each encoder stage: Conv3d 3×3×3 (stride (1,2,2), (1,2,2), (2,2,2)) → BN → ReLU → CA.
Coordinate attention, extended to video: the map is average-pooled along each axis in turn
(giving T, H and W profiles), a shared 1-D conv mixes them, and three sigmoid gates re-weight
the map per frame, per row and per column, so the block knows WHERE (and when) motion is.

Outputs are logits over EMOTIONS in the spotter's order (negative, positive, surprise).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from engines.labels import EMOTIONS

VARIANTS = ("P", "C")
FLOW_FLOOR_PX = 0.05  # scale floor: a still face's noise is not blown up to full motion


@dataclass
class RecognizerConfig:
    """Sizes of a `Recognizer`: stack steps T, field side S, channel widths per stage."""

    steps: int = 6
    size: int = 32
    widths: tuple[int, int, int] = (12, 24, 32)
    n_emotions: int = len(EMOTIONS)
    n_aus: int = 13
    ca_reduction: int = 4
    fusion_hidden: int = 32
    live_variant: str = "P"  # the variant the live path uses (chosen on validation)

    def __post_init__(self) -> None:
        self.widths = tuple(int(w) for w in self.widths)  # a loaded list becomes a tuple
        if len(self.widths) != 3 or self.live_variant not in VARIANTS:
            raise ValueError(f"bad recognizer config: {self}")


class RecognizerOutput(NamedTuple):
    general: Tensor  # (B, E) GFE head, trained in stage 1
    prior: Tensor  # (B, E) AFE head, trained in stage 1
    aus: Tensor  # (B, A) AU logits of the prior encoder (stage 1 auxiliary)
    parallel: Tensor  # (B, E) MPFNet-P, trained in stage 2
    hierarchical: Tensor  # (B, E) MPFNet-C, trained in stage 2

    def variant(self, name: str) -> Tensor:
        return {"P": self.parallel, "C": self.hierarchical}[name]


class CoordinateAttention3d(nn.Module):
    """Coordinate attention over (T, H, W): x · g_t · g_h · g_w, each gate (B, C, axis)."""

    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        mid = max(8, channels // reduction)
        self.mix = nn.Sequential(
            nn.Conv1d(channels, mid, 1, bias=False), nn.BatchNorm1d(mid), nn.Hardswish()
        )
        self.gates = nn.ModuleList(nn.Conv1d(mid, channels, 1) for _ in range(3))

    def forward(self, x: Tensor) -> Tensor:
        _, _, t, h, w = x.shape  # (B, C, T, H, W)
        profiles = torch.cat([x.mean((3, 4)), x.mean((2, 4)), x.mean((2, 3))], -1)  # (B,C,T+H+W)
        mixed = self.mix(profiles)  # (B, mid, T+H+W)
        g_t, g_h, g_w = (
            torch.sigmoid(gate(part))
            for gate, part in zip(self.gates, mixed.split([t, h, w], -1), strict=True)
        )  # (B, C, T), (B, C, H), (B, C, W)
        return x * g_t[..., None, None] * g_h[:, :, None, :, None] * g_w[:, :, None, None, :]


class Encoder3d(nn.Module):
    """Three Conv3d → BN → ReLU → CA stages; returns every stage's map (for -C)."""

    STRIDES = ((1, 2, 2), (1, 2, 2), (2, 2, 2))

    def __init__(self, in_channels: int, widths: tuple[int, int, int], reduction: int) -> None:
        super().__init__()
        stages, c_in = [], in_channels
        for width, stride in zip(widths, self.STRIDES, strict=True):
            stages.append(
                nn.Sequential(
                    nn.Conv3d(c_in, width, 3, stride=stride, padding=1, bias=False),
                    nn.BatchNorm3d(width),
                    nn.ReLU(inplace=True),
                    CoordinateAttention3d(width, reduction),
                )
            )
            c_in = width
        self.stages = nn.ModuleList(stages)

    def forward(self, x: Tensor) -> list[Tensor]:
        maps = []
        for stage in self.stages:
            x = stage(x)
            maps.append(x)  # (B, C_k, T_k, H_k, W_k)
        return maps


def _fuse_block(c_in: int, c_out: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv3d(c_in, c_out, 1, bias=False), nn.BatchNorm3d(c_out), nn.ReLU(inplace=True)
    )


class HierarchicalFusion(nn.Module):
    """MPFNet-C: level-by-level fusion of both encoders' maps, each level fed the one below."""

    def __init__(self, widths: tuple[int, int, int], n_out: int, reduction: int) -> None:
        super().__init__()
        w1, w2, w3 = widths
        self.levels = nn.ModuleList(
            [_fuse_block(2 * w1, w1), _fuse_block(2 * w2 + w1, w2), _fuse_block(2 * w3 + w2, w3)]
        )
        self.attention = CoordinateAttention3d(w3, reduction)
        self.head = nn.Linear(w3, n_out)

    def forward(self, general: list[Tensor], prior: list[Tensor]) -> Tensor:
        fused: Tensor | None = None
        for level, g, a in zip(self.levels, general, prior, strict=True):
            parts = [g, a]
            if fused is not None:
                parts.append(_pool_to(fused, g))  # down to this level
            fused = level(torch.cat(parts, 1))  # (B, C_k, T_k, H_k, W_k)
        assert fused is not None
        return self.head(self.attention(fused).mean((2, 3, 4)))  # (B, E)


class Recognizer(nn.Module):
    """Both encoders, their stage-1 heads and both fusion variants (see the module docstring)."""

    def __init__(self, config: RecognizerConfig) -> None:
        super().__init__()
        self.config = c = config
        w3 = c.widths[-1]
        self.general = Encoder3d(2, c.widths, c.ca_reduction)
        self.prior = Encoder3d(3, c.widths, c.ca_reduction)
        self.general_head = nn.Linear(w3, c.n_emotions)
        self.prior_head = nn.Linear(w3, c.n_emotions)
        self.au_head = nn.Linear(w3, c.n_aus)
        self.parallel = nn.Sequential(
            nn.Linear(2 * w3, c.fusion_hidden),
            nn.ReLU(inplace=True),
            nn.Linear(c.fusion_hidden, c.n_emotions),
        )
        self.hierarchical = HierarchicalFusion(c.widths, c.n_emotions, c.ca_reduction)

    def encoders(self) -> list[nn.Module]:
        """Stage 1 of the progressive training: the encoders and their own heads."""
        return [self.general, self.prior, self.general_head, self.prior_head, self.au_head]

    def fusions(self) -> list[nn.Module]:
        """Stage 2: the fusion variants, on frozen encoders."""
        return [self.parallel, self.hierarchical]

    def forward(self, flow: Tensor, mask: Tensor) -> RecognizerOutput:
        """flow (B, 2, T, S, S) in aligned-face px, mask (B, S, S) in 0..1 → all heads."""
        general_in, prior_in = normalize_stack(flow, mask)
        g = self.general(general_in)  # 3 × (B, C_k, ...)
        a = self.prior(prior_in)
        g_vec, a_vec = g[-1].mean((2, 3, 4)), a[-1].mean((2, 3, 4))  # (B, w3)
        return RecognizerOutput(
            general=self.general_head(g_vec),
            prior=self.prior_head(a_vec),
            aus=self.au_head(a_vec),
            parallel=self.parallel(torch.cat([g_vec, a_vec], 1)),
            hierarchical=self.hierarchical(g, a),
        )

    @torch.no_grad()
    def probabilities(self, flow: Tensor, mask: Tensor, variant: str | None = None) -> Tensor:
        """Softmax of one variant (default: ``config.live_variant``), (B, E); eval mode."""
        self.eval()
        logits = self(flow, mask).variant(variant or self.config.live_variant)
        return torch.softmax(logits, -1)


def _pool_to(x: Tensor, like: Tensor) -> Tensor:
    """Average-pool x (B, C, T, H, W) to the size of ``like``. The encoders' strides make each
    size a whole multiple of the next, where plain pooling equals adaptive pooling and, unlike
    it, exports to ONNX with a dynamic batch."""
    big = [int(n) for n in x.shape[2:]]  # constants: only the batch axis varies
    small = [int(n) for n in like.shape[2:]]
    if all(b % s == 0 for b, s in zip(big, small, strict=True)):
        return F.avg_pool3d(x, tuple(b // s for b, s in zip(big, small, strict=True)))
    return F.adaptive_avg_pool3d(x, small)


def normalize_stack(flow: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """Scale each stack by its 98th-percentile flow magnitude (floored), so micro and macro
    motions look alike; the prior input is the flow inside the ROIs plus the mask itself.

    Returns (general (B, 2, T, S, S), prior (B, 3, T, S, S)).
    """
    magnitude = flow.square().sum(1).flatten(1).sqrt()  # (B, T·S·S)
    n = int(magnitude.shape[1])  # T·S·S is fixed per model: a constant in an exported graph
    k = max(1, round(0.98 * n))
    # The k-th smallest is the (n - k + 1)-th largest: topk exports to ONNX, kthvalue does not.
    scale = magnitude.topk(n - k + 1, dim=1).values[:, -1].clamp_min(FLOW_FLOOR_PX)  # (B,)
    general = flow / scale[:, None, None, None, None]  # (B, 2, T, S, S)
    m = mask[:, None, None].expand(-1, 1, flow.shape[2], -1, -1)  # (B, 1, T, S, S)
    return general, torch.cat([general * m, m], 1)


def mirror_stack(flow: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """The stack of the mirrored face (augmentation): flip x, negate dx."""
    mirrored = flow.flip(-1).clone()  # (B, 2, T, S, S)
    mirrored[:, 0] = -mirrored[:, 0]
    return mirrored, mask.flip(-1)


def n_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
