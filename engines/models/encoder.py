"""Spatial encoder over facial nodes: what an action unit looks like, before time is read.

An action unit is a pattern over a few neighbouring points (AU4 draws the brows down and
together, AU12 pulls the lip corners up and out); pooled over a big patch it looks like speech.
So each node's motion (``node_width`` numbers: its residual at several time offsets, as
z-scores and px) goes through one small MLP shared by all nodes, plus a learned embedding of
WHICH node it is (the same motion means AU1 on the forehead, AU10 on the upper lip); then each
facial group (brows, eyes, nose, mouth, chin, cheeks: contiguous node ranges) is pooled by mean
and max (graph pooling over a facial region, as SpoT-GCN's local pooling), and the pooled
groups plus the extra per-frame channels are mixed into the state-space model's width.

    x (..., N·W + E) ─ split ─ nodes (..., N, W) ─ MLP(W→d_node→d_node) + embed[N] ─ (..., N, d)
                             │                     ─ per group: mean ‖ max ─ (..., G·2·d)
                             └ extra (..., E) ───────────────────────────────┴─ Linear → d_model

Per frame and stateless: the streaming state stays the SSM's, so ``step`` equals ``forward``.
Every op (slicing, mean, amax, Linear, GELU) exports to ONNX opset 17.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn


class NodeEncoder(nn.Module):
    """Node rows → (..., d_model).

    Args:
        group_sizes: nodes per facial group, in node order (groups are contiguous ranges).
        node_width: numbers per node; n_extra: channels after the nodes.
    """

    def __init__(
        self,
        group_sizes: Sequence[int],
        node_width: int,
        n_extra: int,
        d_node: int,
        d_model: int,
    ) -> None:
        super().__init__()
        self.group_sizes = tuple(int(g) for g in group_sizes)
        self.n_nodes = sum(self.group_sizes)
        self.node_width, self.n_extra = node_width, n_extra
        self.node_mlp = nn.Sequential(
            nn.Linear(node_width, d_node), nn.GELU(), nn.Linear(d_node, d_node)
        )
        self.node_embed = nn.Parameter(torch.zeros(self.n_nodes, d_node))
        nn.init.normal_(self.node_embed, std=0.1)
        pooled = 2 * d_node * len(self.group_sizes)
        self.mix = nn.Linear(pooled + n_extra, d_model)

    def forward(self, x: Tensor) -> Tensor:
        n, w = self.n_nodes, self.node_width
        nodes = x[..., : n * w].unflatten(-1, (n, w))  # (..., N, W)
        extra = x[..., n * w :]  # (..., E)
        h = self.node_mlp(nodes) + self.node_embed  # (..., N, d_node)
        pooled, start = [], 0
        for size in self.group_sizes:
            group = h[..., start : start + size, :]  # (..., size, d_node)
            pooled += [group.mean(-2), group.amax(-2)]  # 2 × (..., d_node)
            start += size
        return self.mix(torch.cat([*pooled, extra], dim=-1))  # (..., d_model)
