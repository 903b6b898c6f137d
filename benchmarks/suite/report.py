"""The detection curve's tables (markdown) and ``docs/detectability.png``.

Every table reads the sweep at a stated operating point: a spotter's default threshold
(multiplier 1) or the multiplier with the best recall at ≤ N false micro events per minute of
plain real video, chosen on all expressions so that every slice of a table (an amplitude bin,
a context) reads the same operating point.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmarks.suite.curve import GATED, LOCALISED_STAGES, RESTING, Measured
from benchmarks.suite.labels import AMPLITUDE_BINS, CONTEXTS, DISTRACTORS, GROUPS
from benchmarks.suite.markdown import f as _f
from benchmarks.suite.markdown import head as _head
from benchmarks.suite.markdown import row as _row
from benchmarks.suite.node_tables import node_noise_table, video_noise_table
from benchmarks.suite.stages import STAGES
from engines.eval.detection import FA_TARGETS, best_at

ORACLE = "oracle (BOUND: best threshold on the strongest region's raw shift, chosen on the suite)"


NODE_ORACLE = "oracle on the node residual (BOUND, the next front end; chosen on the suite)"
SCORE_ORACLE = (
    "oracle on the learned apex score (BOUND: what a decoder could make of the score; "
    "chosen on the suite)"
)
ORACLES = (ORACLE, NODE_ORACLE, SCORE_ORACLE)
ORACLE_LABELS = {  # in the figure's legend
    ORACLE: "oracle on the region shift",
    NODE_ORACLE: "oracle on the node residual",
    SCORE_ORACLE: "oracle on the learned apex score",
}


def _curves(m: Measured) -> dict[str, list]:
    curves = {**m.sweeps, ORACLE: m.oracle}
    if m.node_oracle is not None:
        curves[NODE_ORACLE] = m.node_oracle
    if m.score_oracle is not None:
        curves[SCORE_ORACLE] = m.score_oracle
    return curves


def _stages(m: Measured) -> list[str]:
    return list(m.rank)


def froc_table(m: Measured) -> str:
    """Recall (detection; localisation in brackets) at each false-alarm target and at the
    default threshold."""
    lines = [
        _head(
            (
                "spotter",
                *(f"recall @ ≤ {t:g} FA/min" for t in FA_TARGETS),
                "default: recall",
                "default: FA/min",
            )
        )
    ]
    for name, points in _curves(m).items():
        cells = [name]
        for target in FA_TARGETS:
            point = best_at(points, target)
            if point is None:
                cells.append("0 (never that quiet)")
            elif name in ORACLES:
                cells.append(_f(point.recall()))
            else:
                cells.append(f"{_f(point.recall())} ({_f(point.recall(localise=True))})")
        if name in ORACLES:
            cells += ["–", "–"]
        else:
            default = next(p for p in points if p.scale == 1.0)
            cells += [
                f"{_f(default.recall())} ({_f(default.recall(localise=True))})",
                _f(default.false_per_min),
            ]
        lines.append(_row(cells))
    return "\n".join(lines)


def _sliced_table(m: Measured, field: str, values: tuple[str, ...]) -> str:
    counts = [int(m.mask(**{field: v}).sum()) for v in values]
    head = (
        "spotter",
        "operating point",
        *(f"{v} (n={n})" for v, n in zip(values, counts, strict=True)),
    )
    lines = [_head(head)]
    for name, points in _curves(m).items():
        choices = [("≤ 1 FA/min", best_at(points, 1.0)), ("≤ 5 FA/min", best_at(points, 5.0))]
        if name not in ORACLES:
            choices.insert(0, ("default", next(p for p in points if p.scale == 1.0)))
        for label, point in choices:
            cells = [name, label]
            for v in values:
                cells.append("–" if point is None else _f(point.recall(m.mask(**{field: v}))))
            lines.append(_row(cells))
    return "\n".join(lines)


def amplitude_table(m: Measured) -> str:
    return _sliced_table(m, "amplitude_bin", tuple(name for name, _, _ in AMPLITUDE_BINS))


def context_table(m: Measured) -> str:
    return _sliced_table(m, "context", CONTEXTS)


def stage_table(m: Measured) -> str:
    """AUC per stage: all, by amplitude bin, by context."""
    bins = tuple(name for name, _, _ in AMPLITUDE_BINS)
    lines = [_head(("stage", "all", *(f"{b} px" for b in bins), *CONTEXTS))]
    for stage in _stages(m):
        label = f"{stage} (localisation bound)" if stage.endswith("own group") else stage
        cells = [label, _f(m.stage_auc(stage))]
        cells += [_f(m.stage_auc(stage, m.mask(amplitude_bin=b))) for b in bins]
        cells += [_f(m.stage_auc(stage, m.mask(context=c))) for c in CONTEXTS]
        lines.append(_row(cells))
    return "\n".join(lines)


def matched_table(m: Measured) -> str:
    """AUC per stage and context against windows of the SAME context only."""
    calm_large = m.mask(context="calm") & np.array([e.amplitude_90 >= 2.0 for e in m.labels])
    head = ("stage", *CONTEXTS, f"calm, ≥ 2 px (n={int(calm_large.sum())})")
    lines = [_head(head)]
    for stage in _stages(m):
        cells = [stage, *(_f(m.stage_auc(stage, m.mask(context=c), True)) for c in CONTEXTS)]
        cells.append(_f(m.stage_auc(stage, calm_large, True)))
        lines.append(_row(cells))
    return "\n".join(lines)


def group_table(m: Measured) -> str:
    """AUC per stage by the expression's region group, with the calm expressions ≥ 2 px."""
    counts = [int(m.mask(group=g).sum()) for g in GROUPS]
    lines = [_head(("stage", *(f"{g} (n={n})" for g, n in zip(GROUPS, counts, strict=True))))]
    for stage in _stages(m):
        lines.append(_row((stage, *(_f(m.stage_auc(stage, m.mask(group=g))) for g in GROUPS))))
    return "\n".join(lines)


def spottable_table(m: Measured) -> str:
    """Where a micro-expression can be seen: the expressions the live spottable rule admits
    (on the plain video at onset), per stage (AUC against spottable windows only) and per
    spotter (recall at the operating points chosen on all expressions)."""
    mask = m.mask(spottable=True)
    lines = [f"spottable expressions: n = {int(mask.sum())} of {len(m.labels)}", ""]
    lines.append(_head(("stage", "AUC against spottable windows")))
    for stage in _stages(m):
        lines.append(_row((stage, _f(m.stage_auc(stage, mask, "spottable")))))
    lines += ["", _head(("spotter", "default", "≤ 1 FA/min", "≤ 5 FA/min"))]
    for name, points in _curves(m).items():
        default = None if name in ORACLES else next(p for p in points if p.scale == 1.0)
        cells = [name, "–" if default is None else _f(default.recall(mask))]
        for target in (1.0, 5.0):
            point = best_at(points, target)
            cells.append("0" if point is None else _f(point.recall(mask)))
        lines.append(_row(cells))
    return "\n".join(lines)


def calm_large_table(m: Measured) -> str:
    """The lab condition: calm expressions of ≥ 2 px, per stage (AUC) and per spotter."""
    mask = m.mask(context="calm") & np.array([e.amplitude_90 >= 2.0 for e in m.labels])
    lines = [f"calm expressions ≥ 2 px: n = {int(mask.sum())}", ""]
    lines.append(_head(("stage", "AUC")))
    for stage in _stages(m):
        lines.append(_row((stage, _f(m.stage_auc(stage, mask)))))
    lines += ["", _head(("spotter", *(f"recall @ ≤ {t:g} FA/min" for t in FA_TARGETS)))]
    for name, points in _curves(m).items():
        cells = [name]
        for target in FA_TARGETS:
            point = best_at(points, target)
            cells.append("0" if point is None else _f(point.recall(mask)))
        lines.append(_row(cells))
    return "\n".join(lines)


def front_end_table(m: Measured) -> str:
    """What the region shift measures of an expression (injected minus plain at the same
    frames) against what it measures anyway (plain windows), medians per slice."""
    fe = m.front_end
    lines = [
        _head(
            (
                "expressions",
                "n",
                "injected, px",
                "measured (1 s baseline)",
                "gain",
                "codec floor (1 s)",
                "plain windows (1 s)",
                "SNR",
                "measured (133 ms)",
                "plain windows (133 ms)",
                "SNR (133 ms)",
                "nodes: measured",
                "nodes: plain windows",
                "nodes: SNR",
            )
        )
    ]
    slices = [("all", np.ones(len(m.labels), bool))]
    slices += [(f"{b} px", m.mask(amplitude_bin=b)) for b, _, _ in AMPLITUDE_BINS]
    slices += [(c, m.mask(context=c)) for c in CONTEXTS]
    for name, mask in slices:
        if not mask.any():
            continue
        med = {k: _median(v[mask]) for k, v in fe.items()}
        lines.append(
            _row(
                (
                    name,
                    int(mask.sum()),
                    _f(med["injected"]),
                    _f(med["signal_win"]),
                    _f(med["signal_win"] / med["injected"]),
                    _f(med["floor_win"]),
                    _f(med["noise_win"]),
                    _f(med["signal_win"] / med["noise_win"]),
                    _f(med["signal_on"]),
                    _f(med["noise_on"]),
                    _f(med["signal_on"] / med["noise_on"]),
                    _f(med["signal_node"]),
                    _f(med["noise_node"]),
                    _f(med["signal_node"] / med["noise_node"]),
                )
            )
        )
    return "\n".join(lines)


def _median(values: np.ndarray) -> float:
    values = values[np.isfinite(values)]
    return float(np.median(values)) if values.size else float("nan")


def distractor_table(m: Measured) -> str:
    share = ", ".join(f"{k} {v:.0%}" for k, v in m.plain_share.items())
    lines = [f"plain real video: {m.plain_minutes:.2f} min; frames on a distractor: {share}", ""]
    lines.append(_head(("false alarms on plain real video", *DISTRACTORS, "per min")))
    for row, counts in m.distractors.items():
        total = sum(counts.values())
        cells = [row, *(str(counts[d]) for d in DISTRACTORS), _f(total / m.plain_minutes, 1)]
        lines.append(_row(cells))
    return "\n".join(lines)


def suite_line(m: Measured) -> str:
    return (
        f"real rows: {m.clips[0]} injected files ({len(m.labels)} micro-expressions) and "
        f"{m.clips[1]} plain clips ({m.plain_minutes:.2f} min) from {len(m.videos)} videos"
    )


def all_tables(m: Measured) -> str:
    parts = [
        suite_line(m),
        "### Detection curve (FROC): micro recall on injected real video; in brackets MEGC "
        "localisation (IoU ≥ 0.5)",
        froc_table(m),
        "### Recall by apex amplitude (px at 90 px between the eye centres)",
        amplitude_table(m),
        "### Recall by context",
        context_table(m),
        "### Detectability (AUC) per stage: an expression's peak against equal-length windows "
        "of the same video with nothing injected",
        stage_table(m),
        "### Detectability (AUC) per stage and context, against windows of the same context "
        "only (a calm expression against calm stretches of the same video)",
        matched_table(m),
        "### The front end: signal and noise of the region shift (own group, aligned-face px "
        "with 52 px between the eyes; medians)",
        front_end_table(m),
        "### Where the node noise comes from: per node group, the expression's own flow (injected "
        "minus plain at the same frames, peak over its interval) against the same nodes on plain "
        "video, per frame (aligned-face px; calm: no blink, speech or head motion)",
        node_noise_table(m),
        "### How still a calm face is, per plain video: the 99th percentile over its calm frames "
        "of the largest node residual (aligned-face px)",
        video_noise_table(m),
        "### Detectability (AUC) per stage by region group",
        group_table(m),
        "### The lab condition: calm, ≥ 2 px",
        calm_large_table(m),
        "### Where a micro-expression can be seen: the expressions the live spottable rule "
        "admits (no blink, speech or head motion, brows still over the last second, on the "
        "plain video at onset)",
        spottable_table(m),
        "### False alarms by distractor",
        distractor_table(m),
    ]
    return "\n\n".join(parts) + "\n"


def plot(m: Measured, path: str | Path) -> None:
    """Top: FROC curves (recall vs false micro events per minute). Bottom: AUC per stage ×
    amplitude bin, one line per context."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stages = (*STAGES, LOCALISED_STAGES[0], *[s for s in m.rank if s.startswith("node")])
    columns = 4
    rows = -(-len(stages) // columns)  # ceil
    fig = plt.figure(figsize=(4.2 * columns, 4.2 + 3.4 * rows), constrained_layout=True)
    grid = fig.add_gridspec(1 + rows, columns, height_ratios=[1.25] + [1.0] * rows)
    ax = fig.add_subplot(grid[0, :])
    styles = {
        "learned": "C0-o",
        "classic": "C1-s",
        f"learned{GATED}": "C0:",
        f"classic{GATED}": "C1:",
        f"learned{RESTING}": "C0-.",
        ORACLE: "k--",
        NODE_ORACLE: "C2--",
        SCORE_ORACLE: "C0--",
    }
    for name, points in _curves(m).items():
        pts = sorted(points, key=lambda p: p.false_per_min)
        x = np.array([max(p.false_per_min, 0.05) for p in pts])
        y = np.array([p.recall() for p in pts])
        label = f"{name} spotter"
        if name in ORACLES:
            label = ORACLE_LABELS[name]
        ax.plot(x, np.maximum.accumulate(y), styles[name], ms=3, label=label)
    for target in (0.5, 1, 2, 5):
        ax.axvline(target, color="0.85", lw=0.8, zorder=0)
    ax.set_xscale("log")
    ax.set_xlim(0.05, 60)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("false micro events per minute of plain real video (log)")
    ax.set_ylabel("micro recall, injected real video")
    ax.set_title(f"Detection curve ({suite_line(m)})", fontsize=9)
    ax.legend(loc="upper left", fontsize=8)
    centres = [0.75, 1.5, 2.5, 3.5]
    bins = [name for name, _, _ in AMPLITUDE_BINS]
    for k, stage in enumerate(stages):
        ax = fig.add_subplot(grid[1 + k // columns, k % columns])
        for c, context in enumerate(CONTEXTS):
            y = [m.stage_auc(stage, m.mask(amplitude_bin=b, context=context)) for b in bins]
            n = int(m.mask(context=context).sum())
            ax.plot(centres, y, f"C{c + 2}-o", ms=4, label=f"{context} (n={n})")
        ax.axhline(0.5, color="0.6", lw=0.8, ls=":")
        ax.set_ylim(0.0, 1.0)
        ax.set_xticks(centres, [f"{b}" for b in bins])
        ax.set_xlabel("apex amplitude, px at 90 px eye distance")
        ax.set_title(stage, fontsize=9)
        if k % columns == 0:
            ax.set_ylabel("AUC vs plain windows (0.5 = chance)")
            ax.legend(fontsize=7, loc="lower right")
    fig.savefig(path, dpi=110)
    plt.close(fig)
