"""Causal discovery over facial-region motion → where the privacy sticker goes (Tan et al.).

Tan et al. (ICASSP 2025, "post-hoc adversarial stickers against micro-expression leakage")
build a causal graph over the motion of facial regions with the PC algorithm (Fisher-z test,
alpha 0.05) and put the sticker on the region with the most outgoing edges, the one whose
motion drives the others. The paper uses 14 regions from the 68 landmarks; mexlive uses its
own 13 facial ROIs (``stream/face/rois.py``; the nose-bridge anchor is head motion and is left out).

Contemporaneous samples cannot orient a fork (X → Y, X → Z has no collider), so the graph is
built over two time slices: every region at t - lag and at t. Background knowledge forbids
edges from the present to the past (time order), which orients every cross-slice edge. A
region's outgoing edges are its edges past → another region's present plus its directed edges
inside the present slice. The root is the region with the most outgoing LAGGED edges (time
order is the strongest evidence of driving; contemporaneous orientations come from colliders
and are noisier, measured), then the most outgoing edges of both kinds, then the strongest
lagged correlation with the other regions.

Too little motion (no expression in the window, a still face) gives no usable graph: then the
root falls back to ``fallback`` (the most frequent root of earlier calibrations, see
``most_frequent_root``), and the result says so.

This module takes arrays: the motion series (T, R) and the region names. ``stream/`` (or a
feature file, ``series_from_feature_file``) provides them.

Example:
    graph = discover(mags, valid, names, lag_frames=3)
    graph.save_json("graph.json"); graph.save_png("graph.png")
    print(graph.root, graph.fallback_used, graph.reason)
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from engines.errors import DataError, MexliveError, report_error

DEFAULT_FALLBACK = "brow_l_inner"  # see FALLBACK_NOTE
FALLBACK_NOTE = (
    "default fallback: an inner-brow region, the paper's most frequent root ('most often "
    "above an eyebrow'); bench_privacy.py reports the most frequent root on mexlive's clips"
)


class CausalError(DataError):
    """Series that cannot be analysed at all (wrong shapes, names that do not match)."""


@dataclass
class CausalGraph:
    """The discovered graph and the chosen root region.

    Attributes:
        names: region names (R,).
        lag_frames: the lag between the two time slices.
        edges: directed edges between regions as (source, target, kind), kind "lagged"
            (source at t - lag → target at t) or "contemporaneous" (both at t).
        undirected: edges PC left unoriented, (a, b), inside the present slice.
        out_degree: outgoing edges per region (lagged to other regions + contemporaneous).
        root: the chosen region. fallback_used: True when the graph was not usable.
        reason: why the fallback was used ("" otherwise).
        n_samples: lagged sample pairs the test saw. alpha: Fisher-z level.
        motion: mean motion per region over the window (for the drawing).
    """

    names: list[str]
    lag_frames: int
    edges: list[tuple[str, str, str]] = field(default_factory=list)
    undirected: list[tuple[str, str]] = field(default_factory=list)
    out_degree: dict[str, int] = field(default_factory=dict)
    root: str = DEFAULT_FALLBACK
    fallback_used: bool = False
    reason: str = ""
    n_samples: int = 0
    alpha: float = 0.05
    motion: list[float] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"schema": "mexlive-causal/v1", **asdict(self)}

    def save_json(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        return path

    @classmethod
    def load_json(cls, path: str | Path) -> CausalGraph:
        data = json.loads(Path(path).read_text())
        data.pop("schema", None)
        data["edges"] = [tuple(e) for e in data["edges"]]
        data["undirected"] = [tuple(e) for e in data["undirected"]]
        return cls(**data)

    def save_png(self, path: str | Path, positions: np.ndarray | None = None) -> Path:
        """Draw the graph: regions as circles (at ``positions`` (R, 2), e.g. their places on
        the canonical face, else on a circle), lagged edges solid, contemporaneous dashed,
        the root in red."""
        return draw_graph(self, Path(path), positions)


def lagged_pairs(
    series: np.ndarray, valid: np.ndarray, lag_frames: int
) -> tuple[np.ndarray, np.ndarray]:
    """(past, present) rows (N, R) each, for every t whose rows t - lag..t are all valid (no
    pair spans a gap)."""
    t_count = series.shape[0]
    ok = valid.astype(bool)
    run = np.zeros(t_count, np.int64)  # length of the valid run ending at t
    for t in range(t_count):
        run[t] = run[t - 1] + 1 if ok[t] and t > 0 else int(ok[t])
    present = np.flatnonzero(run > lag_frames)  # (N,)
    return series[present - lag_frames], series[present]


def discover(
    series: np.ndarray,
    valid: np.ndarray,
    names: Sequence[str],
    lag_frames: int = 3,
    alpha: float = 0.05,
    fallback: str = DEFAULT_FALLBACK,
    min_samples: int = 60,
    min_motion_ratio: float = 3.0,
    max_depth: int | None = 3,
) -> CausalGraph:
    """PC (causal-learn, Fisher-z) over two time slices of region motion; choose the root.

    Args:
        series: (T, R) motion per frame and region (mexlive: onset-flow magnitude, px).
        valid: (T,) bool, False where there was no face or a gap.
        names: the R region names.
        lag_frames: past slice = t - lag (≈ 100 ms at 30 fps for 3).
        fallback: the region used when the window has too little motion.
        min_samples: fewer lagged pairs than this → fallback.
        min_motion_ratio: the window must hold motion: the strongest region's 99th percentile
            must be this many times its median (a still face is noise only) → else fallback.
        max_depth: largest conditioning set PC tries (causal-learn's ``max_k``); None is
            unbounded. 3 keeps a 26-node graph to seconds on a small CPU.
    """
    series = np.asarray(series, np.float64)
    valid = np.asarray(valid, bool)
    names = list(names)
    if series.ndim != 2 or series.shape[1] != len(names) or valid.shape != series.shape[:1]:
        raise CausalError(
            f"series must be (T, {len(names)}) with valid (T,), got {series.shape}, {valid.shape}"
        )
    if fallback not in names:
        raise CausalError(f"fallback region {fallback!r} is not one of {names}")
    graph = CausalGraph(names, lag_frames, root=fallback, alpha=alpha)
    past, present = lagged_pairs(series, valid, lag_frames)  # (N, R) each
    graph.n_samples = len(present)
    graph.motion = [round(float(m), 4) for m in (present.mean(0) if len(present) else [0] * 0)]
    problem = _insufficient(present, min_samples, min_motion_ratio)
    if problem:
        return _fall_back(graph, problem)
    _run_pc(graph, past, present, alpha, max_depth)
    if not any(graph.out_degree.values()):
        return _fall_back(graph, "the graph has no outgoing edge between regions")
    strength = _lagged_strength(past, present)  # (R,) last tie-break
    lagged = Counter(src for src, _, kind in graph.edges if kind == "lagged")
    graph.root = max(
        names, key=lambda n: (lagged[n], graph.out_degree[n], strength[names.index(n)])
    )
    return graph


def _insufficient(present: np.ndarray, min_samples: int, min_motion_ratio: float) -> str:
    if len(present) < min_samples:
        return f"only {len(present)} usable frames (need {min_samples})"
    p99 = np.percentile(present, 99, axis=0)  # (R,)
    median = np.median(present, axis=0) + 1e-9  # (R,)
    if float(np.max(p99 / median)) < min_motion_ratio:
        return "not enough motion (no expression in the calibration window)"
    if np.any(present.std(0) < 1e-9):
        return "a region's motion is constant (no face texture there)"
    return ""


def _fall_back(graph: CausalGraph, reason: str) -> CausalGraph:
    graph.fallback_used = True
    graph.reason = reason
    graph.out_degree = {n: 0 for n in graph.names}
    return graph


def _run_pc(
    graph: CausalGraph, past: np.ndarray, present: np.ndarray, alpha: float, max_depth: int | None
) -> None:
    """causal-learn's PC with the time-order background knowledge; fills edges/out_degree."""
    from causallearn.graph.GraphNode import GraphNode
    from causallearn.search.ConstraintBased.PC import pc
    from causallearn.utils.cit import fisherz
    from causallearn.utils.PCUtils.BackgroundKnowledge import BackgroundKnowledge

    names, r = graph.names, len(graph.names)
    node_names = [f"{n}@t-{graph.lag_frames}" for n in names] + [f"{n}@t" for n in names]
    knowledge = BackgroundKnowledge()
    for i, name in enumerate(node_names):
        knowledge.add_node_to_tier(GraphNode(name), 0 if i < r else 1)
    data = np.hstack([past, present])  # (N, 2R)
    result = pc(
        data,
        alpha,
        fisherz,
        stable=True,
        background_knowledge=knowledge,
        show_progress=False,
        node_names=node_names,
        max_k=max_depth,
    )
    matrix = result.G.graph  # (2R, 2R): [i, j] == -1 and [j, i] == 1 means i → j
    graph.out_degree = {n: 0 for n in names}
    for i in range(2 * r):
        for j in range(i + 1, 2 * r):
            if matrix[i, j] == -1 and matrix[j, i] == 1:
                _add_directed(graph, i, j)
            elif matrix[i, j] == 1 and matrix[j, i] == -1:
                _add_directed(graph, j, i)
            elif matrix[i, j] == matrix[j, i] == -1 and i >= r and names[i % r] != names[j % r]:
                graph.undirected.append((names[i % r], names[j % r]))


def _add_directed(graph: CausalGraph, source: int, target: int) -> None:
    """Record node ``source`` → node ``target`` (indices into past + present slices) when it
    is an edge into the present between two different regions."""
    r = len(graph.names)
    src, dst = graph.names[source % r], graph.names[target % r]
    if target < r or src == dst:  # past-slice edges repeat the present's; self-lags are inertia
        return
    graph.edges.append((src, dst, "lagged" if source < r else "contemporaneous"))
    graph.out_degree[src] += 1


def _lagged_strength(past: np.ndarray, present: np.ndarray) -> np.ndarray:
    """(R,) sum over other regions of |corr(region at t - lag, other at t)|."""
    r = past.shape[1]
    corr = np.corrcoef(past.T, present.T)[:r, r:]  # (R, R) past rows, present columns
    np.fill_diagonal(corr, 0.0)
    return np.nansum(np.abs(corr), axis=1)


def most_frequent_root(graphs: Iterable[CausalGraph]) -> str | None:
    """The root most often chosen by real (non-fallback) calibrations; None if there is none."""
    roots = Counter(g.root for g in graphs if not g.fallback_used)
    return roots.most_common(1)[0][0] if roots else None


def series_from_feature_file(path: str | Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(mags (T, R), valid (T,), region names) from a ``--dump-features`` / stream.datasets.features
    .npz: the onset-baseline flow magnitude channel of every facial region."""
    try:
        data = np.load(path, allow_pickle=False)
        names = [str(n) for n in data["names"]]
        values, valid = data["values"], data["valid"].astype(bool)
    except (OSError, KeyError, ValueError) as exc:
        raise CausalError(f"cannot read features {path}: {exc}") from None
    columns = [i for i, n in enumerate(names) if n.endswith(".mag_on")]
    if not columns:
        raise CausalError(f"{path} has no per-region '.mag_on' channels")
    regions = [names[i].removesuffix(".mag_on") for i in columns]
    return values[:, columns].astype(np.float64), valid, regions


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m calibration.causal",
        description="Causal graph over facial-region motion of a feature file; prints the root.",
    )
    parser.add_argument(
        "features", help=".npz from mexlive --dump-features or stream.datasets.features"
    )
    parser.add_argument("--out", default="causal_graph", help="writes OUT.json and OUT.png")
    parser.add_argument("--lag", type=int, default=3, help="lag between the slices, frames")
    parser.add_argument("--alpha", type=float, default=0.05, help="Fisher-z level")
    args = parser.parse_args(argv)
    try:
        mags, valid, regions = series_from_feature_file(args.features)
        fallback = DEFAULT_FALLBACK if DEFAULT_FALLBACK in regions else regions[0]
        graph = discover(mags, valid, regions, args.lag, args.alpha, fallback=fallback)
    except MexliveError as exc:
        return report_error(exc)
    graph.save_json(f"{args.out}.json")
    graph.save_png(f"{args.out}.png")
    note = f" (fallback: {graph.reason})" if graph.fallback_used else ""
    print(
        f"root region: {graph.root}{note}; {len(graph.edges)} directed edges; "
        f"wrote {args.out}.json and {args.out}.png"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
