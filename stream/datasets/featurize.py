"""Frames → aligned faces → feature rows as the live pipeline computes them, and the .npz
layout of a feature file; shared by the synthetic (``features.py``) and real-video
(``real.py``) data sets so that both hold exactly the same numbers for the same pixels.

Example:
    arrays = featurize(((i, i / 30.0, image) for i, image in enumerate(images)), 30.0)
    arrays.update(truth_arrays(events))
    save_atomic(Path("clip.npz"), arrays)
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from stream.errors import MexliveError
from stream.synthetic.truth import TruthEvent


def fixtures_dir() -> Path:
    """$MEXLIVE_FIXTURES, else ../shared/fixtures beside the repository."""
    root = os.environ.get("MEXLIVE_FIXTURES")
    if root:
        return Path(root)
    return Path(__file__).resolve().parents[3] / "shared" / "fixtures"


def resolve_video(name: str) -> Path:
    """A video name → its path: an existing path as is, else the fixtures' videos folder.

    Raises MexliveError naming the known videos when it is neither.
    """
    if Path(name).is_file():
        return Path(name).resolve()
    folder = fixtures_dir() / "videos"
    path = folder / name
    if path.is_file():
        return path
    known = sorted(p.name for p in folder.glob("*.mp4")) if folder.is_dir() else []
    hint = f" (known: {', '.join(known)})" if known else f" ({folder} is missing)"
    raise MexliveError(f"video {name!r} not found in {folder}{hint}")


def init_worker() -> None:
    """Pool initializer: one OpenCV thread per process, one process per core."""
    import cv2

    cv2.setNumThreads(1)  # no oversubscription


def featurize(frames: Iterable[tuple[int, float, np.ndarray]], fps: float) -> dict[str, np.ndarray]:
    """(index, pts_s, BGR image (H, W, 3)) frames → the feature arrays of a feature file.

    Time is ``index / fps`` as the live pipeline stamps a file source; ``pts_s`` is kept as
    given (the video's own timestamps).
    """
    from stream.face.align import FaceTracker
    from stream.face.features import FeatureExtractor
    from stream.face.nodes import NodeFlow

    tracker, extractor, nodes = FaceTracker(), FeatureExtractor(), NodeFlow()
    values, valid, seq, t_mono_ns, pts_s, landmarks = [], [], [], [], [], []
    node_residual, node_valid = [], []
    no_face = np.full((68, 2), np.nan, np.float32)
    for index, pts, image in frames:
        t_s = index / fps
        t_ns = round(t_s * 1e9)
        face = tracker.update(image, index, t_ns, t_s)
        row = extractor.update(face)
        values.append(row.values.copy())  # the extractor reuses its buffer
        node = nodes.update(face)
        node_residual.append(node.residual.astype(np.float16))  # (O, N, 2): ±65 px, 0.01 px
        node_valid.append(node.valid)
        ok = face.ok and face.landmarks_px is not None
        landmarks.append(face.landmarks_px.astype(np.float32) if ok else no_face)
        valid.append(row.valid)
        seq.append(index)
        t_mono_ns.append(t_ns)
        pts_s.append(pts)
    n_features = extractor.n_features
    return {
        "values": np.stack(values) if values else np.zeros((0, n_features), np.float32),  # (L, F)
        "valid": np.array(valid, bool),  # (L,)
        "seq": np.array(seq, np.int64),  # (L,)
        "t_mono_ns": np.array(t_mono_ns, np.int64),  # (L,)
        "pts_s": np.array(pts_s, np.float64),  # (L,)
        # raw dlib landmarks in frame px, NaN without a face: context labels (blinks,
        # speech, head motion) and face size for the detectability suite
        "landmarks_px": np.stack(landmarks) if landmarks else np.zeros((0, 68, 2), np.float32),
        # landmark-node motion at 40/80/160 ms, rigid fit removed (stream/face/nodes.py):
        # the next front end, measured by the detectability suite beside the rows
        "node_residual": np.stack(node_residual) if node_residual else np.zeros(0, np.float16),
        "node_valid": np.stack(node_valid) if node_valid else np.zeros(0, bool),  # (L, O)
        "names": np.array(extractor.names),  # (F,)
        "fps": np.float64(fps),
    }


def truth_arrays(events: Sequence[TruthEvent]) -> dict[str, np.ndarray]:
    """The truth columns of a feature file, one row per event (frames 0-based, inclusive)."""
    return {
        "truth_onset": np.array([e.onset for e in events], np.int64),  # (K,)
        "truth_apex": np.array([e.apex for e in events], np.int64),  # (K,)
        "truth_offset": np.array([e.offset for e in events], np.int64),  # (K,)
        "truth_kind": np.array([e.kind for e in events], dtype="<U8"),  # (K,)
        "truth_emotion": np.array([e.emotion for e in events], dtype="<U8"),  # (K,)
        "truth_peak_px": np.array([e.peak_px for e in events], np.float64),  # (K,) frame px
        "truth_aus": np.array(["+".join(map(str, e.aus)) for e in events], dtype="<U32"),  # (K,)
    }


def save_atomic(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """``np.savez_compressed`` to ``path`` through ``path.npz.part``: a reader never sees a
    half-written file under the final name."""
    partial = path.with_suffix(".npz.part")
    with open(partial, "wb") as f:
        np.savez_compressed(f, **arrays)
    partial.replace(path)
