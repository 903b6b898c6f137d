"""PNG drawing of a causal graph over facial regions (matplotlib, headless Agg backend)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from calibration.causal import CausalGraph


def draw_graph(graph: CausalGraph, path: Path, positions: np.ndarray | None = None) -> Path:
    """Regions as circles sized by their motion, lagged edges solid, contemporaneous dashed,
    undirected grey, the root filled red; the title names the root (and a fallback)."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed; safe to call from any thread once set
    import matplotlib.pyplot as plt

    names = graph.names
    if positions is None:
        angle = np.linspace(0, 2 * np.pi, len(names), endpoint=False)  # (R,)
        positions = np.stack([np.cos(angle), -np.sin(angle)], axis=1)  # (R, 2)
    else:
        positions = np.asarray(positions, np.float64) * (1.0, -1.0)  # image y points down
    where = {n: positions[i] for i, n in enumerate(names)}
    fig, ax = plt.subplots(figsize=(6, 6), dpi=100)
    for a, b in graph.undirected:
        (x0, y0), (x1, y1) = where[a], where[b]
        ax.plot([x0, x1], [y0, y1], color="0.75", lw=1, zorder=1)
    for src, dst, kind in graph.edges:
        ax.annotate(
            "",
            xy=where[dst],
            xytext=where[src],
            zorder=2,
            arrowprops={
                "arrowstyle": "-|>",
                "lw": 1.4,
                "shrinkA": 12,
                "shrinkB": 12,
                "linestyle": "-" if kind == "lagged" else "--",
                "color": "tab:red" if src == graph.root else "tab:blue",
            },
        )
    motion = np.asarray(graph.motion if graph.motion else np.ones(len(names)), np.float64)
    sizes = 200 + 600 * motion / max(float(motion.max()), 1e-9)  # (R,)
    colours = ["tab:red" if n == graph.root else "white" for n in names]
    ax.scatter(positions[:, 0], positions[:, 1], s=sizes, c=colours, edgecolors="k", zorder=3)
    for n, (x, y) in where.items():
        ax.text(x, y - 0.09 * np.ptp(positions[:, 1]), n, ha="center", va="top", fontsize=7)
    title = f"root: {graph.root} ({graph.out_degree.get(graph.root, 0)} out-edges)"
    if graph.fallback_used:
        title = f"root: {graph.root} (fallback: {graph.reason})"
    ax.set_title(
        title + f"\nlag {graph.lag_frames} frames, n={graph.n_samples}, alpha={graph.alpha}",
        fontsize=8,
    )
    ax.set_aspect("equal")
    ax.margins(0.15)
    ax.axis("off")
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return path
