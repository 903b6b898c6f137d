"""The figure of ``mexlive inspect``: one PNG, x in seconds, panels sharing that axis.

Per spotter a panel: its apex score, the decoder's threshold, the truth intervals shaded (micro
and macro in their own colours), the frames without a face hatched grey, and each spotted
event as a bar labelled kind, emotion and its times in seconds. With a truth CSV a bar is green
when it matches a truth row (same kind, IoU ≥ 0.5), teal for a kind mismatch (it overlaps a
truth row of the other kind that well: found, called the wrong kind) and red when it matches
nothing; without one every bar is grey, since there is nothing to match. Where the threshold
moves, the plot says why: which term binds (the decoder's running level, the person's
baseline floor once calibration ends, the minimum, or one fixed operating point), and a
dotted line marks the end of calibration. Under the panels one heat map of the per-region
motion (the ``{roi}.mag_on`` channels: flow magnitude from the window's reference frame), so a
reader sees which region moved when the score rose.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from engines.context import runs
from engines.decoding import DecoderConfig
from stream.app.inspection import Featurized, SpotterTrace, emotion_label
from stream.errors import OutputError
from stream.face.features import FACE_ROIS
from stream.synthetic.truth import TruthEvent

if TYPE_CHECKING:
    from matplotlib.figure import Figure

TRUTH_COLOURS = {"micro": "#f28e2b", "macro": "#4e79a7"}  # orange, blue (colour-blind safe)
# An event's colour by what the truth says of it; "spotted" when no truth was given.
VERDICT_COLOURS = {
    "matches truth": "#2e7d32",  # green
    "kind mismatch": "#00838f",  # teal
    "no match": "#c62828",  # red
    "spotted": "#455a64",  # blue grey: nothing to compare with
}
THRESHOLD_COLOUR = "#7b1fa2"
MOVE = 0.25  # a relative change of the threshold that gets its own note
MAX_NOTES = 8  # threshold notes per panel: more would hide the score


def draw(
    path: Path,
    features: Featurized,
    traces: Sequence[SpotterTrace],
    truth: Sequence[TruthEvent] | None,
) -> None:
    """Write the figure to ``path`` (PNG); OutputError when it cannot be written. ``truth``
    None: no truth CSV was given (events are not judged)."""
    import matplotlib.pyplot as plt

    fig = figure(features, traces, truth)
    try:
        fig.savefig(path, dpi=100)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc}") from None
    finally:
        plt.close(fig)


def figure(
    features: Featurized, traces: Sequence[SpotterTrace], truth: Sequence[TruthEvent] | None
) -> Figure:
    """The figure (a matplotlib Figure, not yet saved: the caller closes it)."""
    import matplotlib

    matplotlib.use("Agg")  # no display: a file only
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    t = features.t_s  # (L,)
    frame_s = 1.0 / features.fps
    nodes = features.node_groups is not None
    heights = [3.0] * len(traces) + [2.6] + ([1.8] if nodes else [])
    fig, axes = plt.subplots(
        len(heights),
        1,
        figsize=(max(12.0, min(40.0, 1.2 * (t[-1] - t[0]))), sum(heights)),
        sharex=True,
        gridspec_kw={"height_ratios": heights},
        constrained_layout=True,
    )
    rows = truth or []
    targets = [e for e in rows if e.kind in TRUTH_COLOURS and e.onset < features.length]
    for ax, trace in zip(axes[: len(traces)], traces, strict=True):
        _gaps(ax, t, features.valid, frame_s)
        for event in targets:
            ax.axvspan(
                *_span(t, event.onset, event.offset, frame_s),
                color=TRUTH_COLOURS[event.kind],
                alpha=0.22,
                lw=0,
            )
        ax.plot(t, trace.apex_score, color="black", lw=1.0, label="apex score")
        fixed = trace.decoder is not None and not trace.decoder.adaptive
        ax.plot(
            t,
            trace.threshold,
            color=THRESHOLD_COLOUR,
            lw=1.0,
            ls="--",
            label="threshold (fixed)" if fixed else "running threshold",
        )
        # The threshold too: a quiet video's score may never come near it, and that is the
        # answer to "why did nothing fire".
        highest = np.nanmax(np.r_[trace.apex_score, trace.threshold, 0.0])
        top = max(1.0, float(highest) * 1.05)
        ax.set_ylim(-0.02, top * 1.3)  # head room for the event labels
        _threshold_notes(ax, t, trace)
        for k, event in enumerate(trace.events):
            _event(ax, t, event, verdict(trace, k, truth), frame_s, top * (1.06 + 0.11 * (k % 2)))
        ax.set_ylabel(f"{trace.name}\napex score")
        ax.grid(alpha=0.25)
    shown = ("spotted",) if truth is None else ("matches truth", "kind mismatch", "no match")
    handles = [
        *axes[0].get_legend_handles_labels()[0],
        *(
            Patch(color=TRUTH_COLOURS[kind], alpha=0.35, label=f"truth {kind}")
            for kind in TRUTH_COLOURS
            if any(e.kind == kind for e in targets)
        ),
        *(
            Patch(facecolor="none", edgecolor=VERDICT_COLOURS[v], lw=2, label=_legend_label(v))
            for v in shown
        ),
        Patch(facecolor="#bbbbbb", hatch="//", alpha=0.5, label="no face"),
    ]
    # Above the panels, not inside one: a legend in the plot hides the events it explains.
    # Two rows when it is long: one row of ten entries runs past the figure's edges.
    columns = len(handles) if len(handles) <= 6 else -(-len(handles) // 2)
    fig.legend(handles=handles, loc="outside upper center", ncols=columns, fontsize=8)
    axes[0].set_title(f"{features.path.name}: {features.length} frames at {features.fps:g} fps")
    _motion(fig, axes[len(traces)], features, t, frame_s, targets)
    if nodes:
        _nodes(fig, axes[-1], features, t, frame_s)
    axes[-1].set_xlabel("time (s)")
    axes[-1].set_xlim(t[0], t[-1] + frame_s)
    return fig


def verdict(trace: SpotterTrace, k: int, truth: Sequence[TruthEvent] | None) -> str:
    """What the truth says of event ``k``: a key of VERDICT_COLOURS."""
    if truth is None:
        return "spotted"
    if trace.matches[k] is not None:
        return "matches truth"
    if trace.mismatches and trace.mismatches[k] is not None:
        return "kind mismatch"
    return "no match"


def _legend_label(verdict_: str) -> str:
    if verdict_ == "spotted":
        return "spotted (no truth given)"
    if verdict_ == "kind mismatch":
        return "spotted, kind mismatch (truth of the other kind)"
    return f"spotted, {verdict_}"


def threshold_note(term: str, value: float, decoder: DecoderConfig | None) -> str:
    """Why the threshold is ``value`` here: the term that binds (engines.decoding)."""
    config = decoder or DecoderConfig()
    scale = f" × {config.threshold_scale:g}" if config.threshold_scale != 1.0 else ""
    why = {
        "running level": f"running level: median + {config.mad_k:g}×MAD of the score over "
        f"the last ≤ {config.history_s:g} s",
        "baseline floor": "baseline floor from calibration (the first seconds of face)",
        "minimum": f"the minimum {config.min_threshold:g}",
        "fixed": "fixed threshold (the weights' operating point)",
    }.get(term, term)
    return f"{value:.2f}: {why}{scale}"


def _threshold_notes(ax, t: np.ndarray, trace: SpotterTrace) -> None:
    """Mark where the threshold starts, where another term takes over and where it moves by
    more than MOVE, with the term's name; and where calibration ended."""
    if trace.calibrated_s is not None:
        ax.axvline(trace.calibrated_s, color="#616161", lw=0.8, ls=":")
        ax.annotate(
            "calibrated",
            (trace.calibrated_s, 0.0),
            xytext=(2, 2),
            textcoords="offset points",
            fontsize=7,
            color="#616161",
        )
    notes, last = 0, None  # (term, value) of the last note
    for i, (term, value) in enumerate(zip(trace.threshold_term, trace.threshold, strict=False)):
        if not term or not np.isfinite(value):
            continue
        moved = last is not None and abs(value - last[1]) > MOVE * max(abs(last[1]), 1e-9)
        if last is None or term != last[0] or moved:
            ax.plot([t[i]], [value], marker="o", ms=3, color=THRESHOLD_COLOUR)
            ax.annotate(
                threshold_note(term, float(value), trace.decoder),
                (t[i], value),
                xytext=(3, 6 if notes % 2 == 0 else -10),
                textcoords="offset points",
                fontsize=7,
                color=THRESHOLD_COLOUR,
            )
            notes, last = notes + 1, (term, float(value))
            if notes >= MAX_NOTES:
                return


def _nodes(fig, ax, features: Featurized, t: np.ndarray, frame_s: float) -> None:
    """Node motion per group (the next front end: 40/80/160 ms, rigid fit removed), with the
    speaking stretches, the blinks and the moving brows marked (each makes a frame not
    spottable, as the live HUD says): why a stretch could not be spotted."""
    from stream.face.nodes import GROUPS

    image = _heat_map(ax, features, features.node_groups, t, frame_s, "viridis")
    ax.set_yticks(range(len(GROUPS)), GROUPS, fontsize=7)
    ax.set_ylabel("node motion")
    for name, mask, colour, y in (
        ("speaking", features.speaking, "#00e5ff", len(GROUPS) - 0.55),
        ("blink", features.blink, "#ff1744", -0.45),
        ("brows moving", features.brows_moving, "#ffab00", 0.45),
    ):
        if mask is None:
            continue
        for start, stop in runs(mask):
            ax.plot(_span(t, start, stop, frame_s), [y, y], color=colour, lw=3, label=name)
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))
    if unique:
        ax.legend(unique.values(), unique.keys(), loc="upper right", fontsize=7)
    fig.colorbar(image, ax=ax, label="node px", pad=0.01)


def _span(t: np.ndarray, first: int, last: int, frame_s: float) -> tuple[float, float]:
    """Seconds covered by frames first..last (inclusive), clipped to the video."""
    first, last = max(first, 0), min(last, len(t) - 1)
    return float(t[first]), float(t[last]) + frame_s


def _gaps(ax, t: np.ndarray, valid: np.ndarray, frame_s: float) -> None:
    """Hatch each stretch without a face: the score is not defined there."""
    edges = np.flatnonzero(np.diff(np.r_[0, (~valid).astype(np.int8), 0]))  # starts, stops
    for start, stop in zip(edges[::2], edges[1::2], strict=True):
        ax.axvspan(
            *_span(t, start, stop - 1, frame_s),
            facecolor="#bbbbbb",
            alpha=0.35,
            hatch="//",
            edgecolor="#999999",
            lw=0,
        )


def _event(ax, t: np.ndarray, event, verdict_: str, frame_s: float, y: float) -> None:
    """A bar over the event's frames at height ``y``, its apex marked, labelled above with its
    times in seconds (the axis's unit)."""
    colour = VERDICT_COLOURS[verdict_]
    start, stop = _span(t, event.onset_frame, event.offset_frame, frame_s)
    ax.plot([start, stop], [y, y], color=colour, lw=4, solid_capstyle="butt")
    apex = _span(t, event.apex_frame, event.apex_frame, frame_s)[0]
    ax.plot([apex, apex], [0, y], color=colour, lw=0.8, ls=":")
    label = f"{event.kind} {emotion_label(event)} {event.onset_s:.2f}-{event.offset_s:.2f} s"
    if verdict_ == "kind mismatch":
        label += " (kind mismatch)"
    ax.annotate(
        label,
        (0.5 * (start + stop), y),
        xytext=(0, 3),
        textcoords="offset points",
        ha="center",
        va="bottom",
        fontsize=8,
        color=colour,
    )


def _heat_map(ax, features: Featurized, values: np.ndarray, t, frame_s: float, cmap: str):
    """(L, K) per-frame values as rows over time (invalid frames blank); the colour scale stops
    at the 99th percentile so one jerk of the head does not wash the rest out."""
    shown = np.where(features.valid[:, None], values, np.nan)  # (L, K)
    finite = shown[np.isfinite(shown)]
    top = float(np.percentile(finite, 99)) if finite.size else 1.0
    return ax.imshow(
        shown.T,
        aspect="auto",
        interpolation="nearest",
        cmap=cmap,
        vmin=0.0,
        vmax=max(top, 1e-6),
        extent=(t[0], t[-1] + frame_s, values.shape[1] - 0.5, -0.5),
    )


def _motion(fig, ax, features: Featurized, t: np.ndarray, frame_s: float, targets) -> None:
    """Per-region onset flow magnitude over time."""
    columns = [features.names.index(f"{roi}.mag_on") for roi in FACE_ROIS]
    image = _heat_map(ax, features, features.values[:, columns], t, frame_s, "magma")
    ax.set_yticks(range(len(columns)), [roi.replace("_", " ") for roi in FACE_ROIS], fontsize=7)
    ax.set_ylabel("region motion")
    for event in targets:  # the truth's edges, so the motion lines up with the panels above
        for x in _span(t, event.onset, event.offset, frame_s):
            ax.axvline(x, color=TRUTH_COLOURS[event.kind], lw=0.8, alpha=0.8)
    fig.colorbar(image, ax=ax, label="flow px", pad=0.01)
