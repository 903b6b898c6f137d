"""The node-noise tables of the suite's report (``front_end.node_noise`` and
``front_end.node_noise_by_video``, kept in ``Measured``)."""

from __future__ import annotations

import numpy as np

from benchmarks.suite.curve import Measured
from benchmarks.suite.front_end import NODE_NOISE_KEYS, VIDEO_KEYS
from benchmarks.suite.markdown import f as _f
from benchmarks.suite.markdown import head as _head
from benchmarks.suite.markdown import row as _row


def node_noise_table(m: Measured) -> str:
    """Per node group: the expression's own flow at its nodes against the same nodes' motion
    on plain video (``front_end.node_noise``), aligned-face px."""
    head = (
        "node group",
        "expressions",
        "signal, median",
        "signal, p90",
        "plain, median",
        "plain, p99",
        "plain calm, p99",
        "signal p90 / calm p99",
    )
    lines = [_head(head)]
    for group, row in m.node_noise.items():
        n = int(row["n"])
        cells = [group, str(n) if n else "–"]
        cells += [_f(row[k]) for k in NODE_NOISE_KEYS]
        cells.append(_f(row["signal_p90"] / row["noise_calm_p99"]))
        lines.append(_row(cells))
    return "\n".join(lines)


def video_noise_table(m: Measured) -> str:
    """Per plain video: how still its calm frames are at the nodes (``node_noise_by_video``)."""
    head = (
        "plain video",
        "calm frames",
        "spottable frames (calm, brows still)",
        "brows, calm p99",
        "mouth, calm p99",
        "centre, calm p99",
    )
    lines = [_head(head)]
    for video, row in sorted(
        m.node_noise_videos.items(), key=lambda kv: np.nan_to_num(kv[1]["brows"], nan=np.inf)
    ):
        cells = [video, *(f"{row[k]:.0%}" for k in VIDEO_KEYS[:2])]
        cells += [_f(row[k]) for k in VIDEO_KEYS[2:]]
        lines.append(_row(cells))
    return "\n".join(lines)
