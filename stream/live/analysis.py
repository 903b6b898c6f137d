"""The per-frame analysis stages: face alignment, then ROI features; face status events.

``FaceAnalysis(...).stages()`` plugs into ``Pipeline``. Each frame's FrameResults gets
``aligned`` (AlignedFace) and ``features`` (FeatureRow); ``rows`` keeps every FeatureRow when
asked (``--dump-features``), one per processed frame, invalid rows included.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from stream.contracts import FeatureRow, Frame, FrameResults
from stream.errors import MexliveError
from stream.face.align import FaceTracker, TrackerConfig
from stream.face.features import FeatureConfig, FeatureExtractor
from stream.face.remote import AlignProcess
from stream.live.pipeline import Stage

EmitFn = Callable[[str, dict[str, Any], int | None], None]


class FaceAnalysis:
    """Alignment + features for one stream.

    Args:
        emit: ``(status, detail, seq)`` for face_found / face_lost lines.
        tracker: FaceTracker settings. features: FeatureExtractor settings.
        keep_rows: keep every FeatureRow (and frame timing) for ``save_features``.
        align_process: run the tracker in a child process (``stream.face.remote``), so that
            dlib works on the second core; ``ready()`` waits for it, ``close()`` ends it.
        nodes: also run the landmark-node front end (``stream/face/nodes.py``) and put its
            residual on each FeatureRow (the node spotter reads it; ~3 ms a frame).
    """

    def __init__(
        self,
        emit: EmitFn,
        tracker: TrackerConfig | None = None,
        features: FeatureConfig | None = None,
        keep_rows: bool = False,
        align_process: bool = False,
        nodes: bool = False,
    ) -> None:
        from stream.face.flow import warm_up

        # The child loads dlib's models while this process compiles the kernels.
        self.tracker = AlignProcess(tracker) if align_process else FaceTracker(tracker)
        warm_up()  # compile the Numba kernels now, not on the first face
        self.emit = emit
        self.extractor = FeatureExtractor(features)
        self.nodes = None
        if nodes:
            from stream.face.nodes import NodeFlow

            self.nodes = NodeFlow()
        self.keep_rows = keep_rows
        self.rows: list[FeatureRow] = []
        self.pts_s: list[float] = []
        self.faces_found = 0

    def ready(self) -> None:
        """Wait for the alignment process to have loaded its models (AlignProcessError)."""
        if isinstance(self.tracker, AlignProcess):
            self.tracker.wait_ready()

    def close(self) -> None:
        if isinstance(self.tracker, AlignProcess):
            self.tracker.close()

    def stages(self) -> list[Stage]:
        return [Stage("align", self._align), Stage("features", self._features)]

    def _align(self, frame: Frame, results: FrameResults) -> None:
        if results.gap:
            self.tracker.reset()  # frames were lost: the previous landmarks are stale
        aligned = self.tracker.update(frame.image, frame.seq, frame.t_mono_ns, frame.t_s)
        results.aligned = aligned
        if aligned.change == "face_found":
            self.faces_found += 1
            self.emit("face_found", {"faces": aligned.n_faces}, frame.seq)
        elif aligned.change == "face_lost":
            self.emit("face_lost", {"reason": aligned.reason}, frame.seq)

    def _features(self, frame: Frame, results: FrameResults) -> None:
        row = self.extractor.update(results.aligned, gap=results.gap)
        if self.nodes is not None:
            node = self.nodes.update(results.aligned, gap=results.gap)
            row.nodes, row.nodes_valid = node.residual, node.valid
        results.features = row
        if self.keep_rows:
            self.rows.append(row)
            self.pts_s.append(np.nan if frame.pts_s is None else frame.pts_s)

    def save_features(self, path: str | Path, fps: float | None, truth=None) -> Path:
        """Write the kept rows as .npz: values (N, F), valid, seq, t_mono_ns, pts_s, names,
        fps, and for synthetic sources the ground truth (onset, apex, offset, kind, emotion)."""
        path = Path(path)
        if not path.parent.is_dir():
            raise MexliveError(f"cannot write features to {path}: folder does not exist")
        n, f = len(self.rows), self.extractor.n_features
        arrays: dict[str, Any] = {
            "values": np.stack([r.values for r in self.rows])
            if n
            else np.zeros((0, f), np.float32),
            "valid": np.array([r.valid for r in self.rows], bool),
            "seq": np.array([r.seq for r in self.rows], np.int64),
            "t_mono_ns": np.array([r.t_mono_ns for r in self.rows], np.int64),
            "pts_s": np.array(self.pts_s, np.float64),
            "names": np.array(self.extractor.names),
            "fps": np.float64(fps or np.nan),
        }
        if truth is not None:
            arrays.update(
                {
                    "truth_onset": np.array([e.onset for e in truth], np.int64),
                    "truth_apex": np.array([e.apex for e in truth], np.int64),
                    "truth_offset": np.array([e.offset for e in truth], np.int64),
                    "truth_kind": np.array([e.kind for e in truth]),
                    "truth_emotion": np.array([e.emotion for e in truth]),
                }
            )
        with open(path, "wb") as out:
            np.savez_compressed(out, **arrays)
        return path
