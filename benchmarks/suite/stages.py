"""The signal of every stage of the spotting chain, frame by frame, for one suite clip.

The chain, in the order the signal passes through it:

1. **raw shift**: each facial region's mean flow against the window baseline (≈ 1 s ago), with
   the nose-bridge anchor's removed (``mean_dx_win``/``mean_dy_win`` of the feature row,
   aligned-face px); the stage's signal is the strongest single region;
2. **normalised motion**: the same shift z-scored against the region's own trailing 3 s
   (``engines/motion.py``, ``z_shift_win``); the strongest region;
3. **classic score** (``engines/classic.py``) and 4. **learned apex score**: each spotter's
   per-frame decoder input, recorded from the live stage itself (``SpottingStage``: baseline
   calibration, step, the same frames) as a ``ScoreTrace`` that the detection curve decodes
   again at each threshold multiplier.

Per region group (``labels.GROUPS``) the raw and normalised stages also keep the group's
strongest region: the signal a perfectly localised detector would read.

Beside the chain, the front end that would replace its first stage (``NODE_STAGE``): flow at
58 landmark-local nodes at 40, 80 and 160 ms with the rigid motion removed by a robust affine
fit over stable skin (``stream/face/nodes.py``); its signal is the strongest non-stable node
over the three offsets (aligned-face px), and per group the group's strongest node. And a
training-free candidate on the same nodes (``NODE_BUMP_STAGE``, ``node_rise_and_return``):
motion that goes and comes back within twice an offset, which drift, steady head motion and
held poses do not do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from benchmarks.suite.labels import GROUPS, roi_group
from engines.eval.detection import ScoreTrace
from engines.motion import ROI_CHANNELS, normalise_clip, roi_names

SPOTTERS = ("learned", "classic")
STAGES = ("raw shift", "normalised motion", "classic score", "learned apex score")
# the next front end (stream/face/nodes.py), measured beside the chain it would replace
NODE_STAGE = "node residual"
NODE_BUMP_STAGE = "node rise-and-return"  # a training-free candidate on the same nodes


def video_stem(path: Path) -> str:
    """The source video's stem of ``<stem>_plain.npz`` or ``<stem>_s<seed>.npz``."""
    stem = Path(path).stem
    if stem.endswith("_plain"):
        return stem.removesuffix("_plain")
    head, _, seed = stem.rpartition("_s")
    return head if head and seed.isdigit() else stem


@dataclass
class SuiteClip:
    """One feature file of the suite, with what the labels need."""

    path: Path
    video: str  # the source video's stem: an injected clip's plain partner has the same
    fps: float
    values: np.ndarray  # (L, F) raw feature rows
    valid: np.ndarray  # (L,) bool
    names: tuple[str, ...]  # (F,)
    landmarks_px: np.ndarray  # (L, 68, 2) frame px, NaN without a face
    onset: np.ndarray  # (K,) truth, frames
    apex: np.ndarray  # (K,)
    offset: np.ndarray  # (K,)
    kind: np.ndarray  # (K,) str
    peak_px: np.ndarray  # (K,) frame px
    aus: list[tuple[int, ...]] = field(default_factory=list)
    node_residual: np.ndarray | None = None  # (L, O, N, 2) aligned px; None: not measured
    node_valid: np.ndarray | None = None  # (L, O)

    @property
    def length(self) -> int:
        return len(self.valid)

    @property
    def minutes(self) -> float:
        return self.length / self.fps / 60.0

    @classmethod
    def load(cls, path: str | Path) -> SuiteClip:
        from engines.errors import DataError

        path = Path(path)
        with np.load(path, allow_pickle=False) as data:
            if "landmarks_px" not in data.files:
                raise DataError(f"{path}: no landmarks (made before the suite kept them)")
            arrays = {key: data[key] for key in data.files}
        aus = [tuple(int(a) for a in s.split("+") if a) for s in arrays["truth_aus"].tolist()]
        return cls(
            path=path,
            video=video_stem(path),
            fps=float(arrays["fps"]),
            values=arrays["values"],
            valid=arrays["valid"].astype(bool),
            names=tuple(str(n) for n in arrays["names"].tolist()),
            landmarks_px=arrays["landmarks_px"].astype(np.float64),
            onset=arrays["truth_onset"],
            apex=arrays["truth_apex"],
            offset=arrays["truth_offset"],
            kind=arrays["truth_kind"],
            peak_px=arrays["truth_peak_px"],
            aus=aus,
            node_residual=arrays.get("node_residual"),
            node_valid=arrays.get("node_valid"),
        )


@dataclass
class ClipSignals:
    """Every stage's signal over one clip, (L,) each unless said otherwise."""

    raw: np.ndarray  # strongest region's raw window shift, aligned px
    raw_groups: np.ndarray  # (L, G) per group
    motion: np.ndarray  # strongest region's window-shift z
    motion_groups: np.ndarray  # (L, G)
    traces: dict[str, ScoreTrace]  # per spotter: the decoder's input
    node: np.ndarray | None = None  # strongest non-stable node's residual, aligned px
    node_groups: np.ndarray | None = None  # (L, G)
    node_bump: np.ndarray | None = None  # strongest non-stable node's rise-and-return, px

    def stage(self, name: str) -> np.ndarray:
        """The (L,) signal of a stage of ``STAGES``, ``NODE_STAGE`` or ``NODE_BUMP_STAGE``."""
        if name == NODE_STAGE:
            return self.node
        if name == NODE_BUMP_STAGE:
            return self.node_bump
        if name == "raw shift":
            return self.raw
        if name == "normalised motion":
            return self.motion
        return self.traces[name.split()[0]].score


def region_vectors(clip: SuiteClip, baseline: str = "win") -> np.ndarray:
    """(L, R, 2) each region's mean shift (dx, dy) over the window ("win", ≈ 1 s) or onset
    ("on", ≈ 133 ms) baseline, anchor removed (aligned px)."""
    names = list(clip.names)
    rois = roi_names(names)
    dx = clip.values[:, [names.index(f"{r}.mean_dx_{baseline}") for r in rois]]  # (L, R)
    dy = clip.values[:, [names.index(f"{r}.mean_dy_{baseline}") for r in rois]]  # (L, R)
    return np.stack([dx, dy], axis=-1).astype(np.float64)


def region_shifts(clip: SuiteClip) -> np.ndarray:
    """(L, R) each region's |mean window shift| (aligned px)."""
    return np.linalg.norm(region_vectors(clip), axis=-1)


def group_max(per_region: np.ndarray, rois: tuple[str, ...]) -> np.ndarray:
    """(L, R) → (L, G): the strongest region of each group."""
    out = np.zeros((per_region.shape[0], len(GROUPS)), np.float64)  # (L, G)
    for g, group in enumerate(GROUPS):
        cols = [i for i, r in enumerate(rois) if roi_group(r) == group]
        out[:, g] = per_region[:, cols].max(axis=1)
    return out


def clip_signals(clip: SuiteClip, weights: str | None = None) -> ClipSignals:
    """Every stage over one clip (the spotters through the live stage, in this process)."""
    rois = roi_names(clip.names)
    raw = np.where(clip.valid[:, None], region_shifts(clip), 0.0)  # (L, R)
    t_s = np.arange(clip.length) / clip.fps
    motion = normalise_clip(clip.values, clip.valid, t_s, clip.names)  # (L, D)
    z_win = motion[:, : len(ROI_CHANNELS) * len(rois)].reshape(-1, len(rois), len(ROI_CHANNELS))
    z_win = z_win[:, :, ROI_CHANNELS.index("z_shift_win")].astype(np.float64)  # (L, R)
    traces = {name: record_trace(clip, name, weights) for name in SPOTTERS}
    node, node_groups = node_signals(clip)
    node_bump = None if node is None else node_bump_signal(clip)
    return ClipSignals(
        raw=raw.max(axis=1),
        raw_groups=group_max(raw, rois),
        motion=z_win.max(axis=1),
        motion_groups=group_max(z_win, rois),
        traces=traces,
        node=node,
        node_groups=node_groups,
        node_bump=node_bump,
    )


def node_magnitudes(clip: SuiteClip) -> np.ndarray:
    """(L, N) each node's largest residual over the offsets (aligned px; 0 where invalid)."""
    residual = clip.node_residual.astype(np.float64)  # (L, O, N, 2)
    magnitude = np.linalg.norm(residual, axis=-1) * clip.node_valid[:, :, None]  # (L, O, N)
    return magnitude.max(axis=1)


def node_signals(clip: SuiteClip) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(L,) the strongest non-stable node, (L, G) per group (``labels.GROUPS``); None, None
    for a file made without nodes."""
    from stream.face.nodes import NODE_GROUPS, STABLE_NODES

    if clip.node_residual is None:
        return None, None
    per_node = node_magnitudes(clip)  # (L, N)
    moving = [i for i in range(per_node.shape[1]) if i not in STABLE_NODES]
    groups = np.zeros((clip.length, len(GROUPS)))  # (L, G)
    for g, group in enumerate(GROUPS):
        cols = [i for i in moving if NODE_GROUPS[i] == group]
        groups[:, g] = per_node[:, cols].max(axis=1) if cols else 0.0
    return per_node[:, moving].max(axis=1), groups


def node_rise_and_return(
    residual: np.ndarray, valid: np.ndarray, fps: float, offsets_ms: tuple[float, ...]
) -> np.ndarray:
    """(L, N) per node, motion that rises over one offset and returns over the next, px.

    ``residual`` (L, O, N, 2): each node's flow from ``offsets_ms[o]`` ago to now (rigid motion
    removed); ``valid`` (L, O). With k = the offset in frames, r(t - k) is the rise (frames
    t - 2k → t - k) and r(t) the return (t - k → t); the signal is the square root of the part of
    each that opposes the other, max(0, -r(t - k) · r(t))^½: a bump of amplitude A gives A, a
    step (a held pose, a head turn that stays) or steady drift gives 0. Max over the offsets;
    0 where either flow is invalid. Causal: frame t reads frames ≤ t only.
    """
    length = residual.shape[0]
    out = np.zeros((length, residual.shape[2]))  # (L, N)
    for o, offset_ms in enumerate(offsets_ms):
        k = max(round(offset_ms / 1e3 * fps), 1)
        if k >= length:
            continue
        now, before = residual[k:, o].astype(np.float64), residual[:-k, o].astype(np.float64)
        opposed = np.sqrt(np.maximum(-(now * before).sum(axis=-1), 0.0))  # (L - k, N)
        both = (valid[k:, o] & valid[:-k, o])[:, None]  # (L - k, 1)
        out[k:] = np.maximum(out[k:], opposed * both)
    return out


def node_bump_signal(clip: SuiteClip) -> np.ndarray:
    """(L,) the strongest non-stable node's ``node_rise_and_return`` (aligned px)."""
    from stream.face.nodes import STABLE_NODES, NodeConfig

    per_node = node_rise_and_return(
        clip.node_residual, clip.node_valid, clip.fps, NodeConfig().offsets_ms
    )  # (L, N)
    moving = [i for i in range(per_node.shape[1]) if i not in STABLE_NODES]
    return per_node[:, moving].max(axis=1)


def record_trace(clip: SuiteClip, spotter: str, weights: str | None = None) -> ScoreTrace:
    """The live spotting stage over the clip's rows, recording the decoder's input."""
    from stream.live.replay import replay_frames
    from stream.live.spotting import SpottingStage

    stage = SpottingStage(lambda event: None, weights=weights, backend="torch", spotter=spotter)
    score = np.zeros(clip.length)  # (L,)
    probs = np.zeros((clip.length, 3))  # (L, 3)
    seen = np.zeros(clip.length, bool)  # (L,)
    floor_from, floor = -1, 0.0
    frames = replay_frames(
        clip.values, clip.valid, clip.fps, clip.node_residual, clip.node_valid, clip.landmarks_px
    )
    for i, (frame, results) in enumerate(frames):
        calibrated = stage.baseline is not None
        stage(frame, results)
        if results.apex_score is not None and np.isfinite(results.apex_score):
            score[i], probs[i], seen[i] = results.apex_score, results.emotion, True
        if not calibrated and stage.baseline is not None and spotter == "learned":
            floor_from, floor = i, stage.decoder.baseline_floor
    ready = clip.length if stage.ready_seq is None else stage.ready_seq
    return ScoreTrace(score, probs, seen, clip.fps, floor_from, floor, ready)
