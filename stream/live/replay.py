"""A feature file's rows as the live stages hand them to the spotter: for benchmarks, the
detectability suite and ``mexlive inspect``, which replay saved rows instead of decoding video.

Per frame: a ``FeatureRow`` (the region rows, and the node front end's residual when the file
has it) and the context the live context stage would have set (``engines.context``
``ContextTracker`` over the saved landmarks: no face, no context, the tracker starts over), at
frame i's time i / fps, as a file source is stamped live.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from engines.context import ContextTracker
from stream.contracts import FeatureRow, Frame, FrameResults


def replay_frames(
    values: np.ndarray,
    valid: np.ndarray,
    fps: float,
    nodes: np.ndarray | None = None,
    nodes_valid: np.ndarray | None = None,
    landmarks_px: np.ndarray | None = None,
) -> Iterator[tuple[Frame, FrameResults]]:
    """(frame, results) per row.

    Args:
        values: (L, F) region rows; valid: (L,) bool; nodes: (L, O, N, 2) node residuals;
        nodes_valid: (L, O); landmarks_px: (L, 68, 2), NaN where no face was found.
    """
    tracker = ContextTracker()
    image = np.zeros((2, 2, 3), np.uint8)  # the spotter never reads pixels
    rows = np.asarray(values, np.float32)
    for i in range(len(valid)):
        t_s = i / fps
        frame = Frame(i, round(t_s * 1e9), t_s, image)
        row = FeatureRow(i, frame.t_mono_ns, rows[i], bool(valid[i]))
        if nodes is not None and nodes_valid is not None:
            row.nodes = np.asarray(nodes[i], np.float32)
            row.nodes_valid = np.asarray(nodes_valid[i], bool)
        results = FrameResults(features=row)
        if landmarks_px is not None:
            face = landmarks_px[i]
            if np.isfinite(face).all():
                results.context = tracker.update(face, t_s, True)
            else:
                tracker.reset()
        yield frame, results
