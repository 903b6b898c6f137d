"""The work behind ``mexlive inspect`` (``stream/app/inspect.py``): a video featurized as the
live pipeline does it, each spotter run through the live spotting stage, its events matched
against the truth.

Example:
    features = featurize(Path("clip.mp4"))
    trace = run_spotter(features, make_stage("classic"))
    trace.matches = match_truth(trace.events, read_truth_csv("clip.csv"))
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from engines.decoding import DecoderConfig
from engines.eval.metrics import interval_iou, spotting_matches
from stream.contracts import FeatureRow, Frame, FrameResults
from stream.errors import DataError
from stream.output.events import ExpressionEvent
from stream.synthetic.truth import TruthEvent

if TYPE_CHECKING:
    from stream.live.spotting import SpottingStage


@dataclass
class Featurized:
    """Every frame of one video, featurized. Arrays are per frame: (L,) or (L, F)."""

    path: Path
    fps: float
    seq: np.ndarray  # (L,) int, the source's 0-based frame index
    t_s: np.ndarray  # (L,) media time, s
    values: np.ndarray  # (L, F) float32 feature rows
    valid: np.ndarray  # (L,) bool: a face was aligned and the flow window was warm
    names: tuple[str, ...]
    node_groups: np.ndarray | None = None  # (L, G) strongest node residual per node group, px
    speaking: np.ndarray | None = None  # (L,) bool, engines/context.py
    blink: np.ndarray | None = None  # (L,) bool
    brows_moving: np.ndarray | None = None  # (L,) bool, stream.live.context.BrowMotion
    nodes: np.ndarray | None = None  # (L, O, N, 2) node residual, aligned px (the node spotter)
    nodes_valid: np.ndarray | None = None  # (L, O) bool
    contexts: list | None = None  # (L,) engines.context.FrameContext per frame

    @property
    def length(self) -> int:
        return len(self.seq)


@dataclass
class SpotterTrace:
    """One spotter over one video: its per-frame score and threshold (NaN on invalid rows),
    which term of the threshold bound on each frame (``engines.decoding.THRESHOLD_TERMS``, ""
    on invalid rows) and the decoder's settings, the time its calibration ended (None: never),
    its events and, per event, the index of the truth row it matches (None: no match) and,
    for an event without a match, the truth row of the other kind it overlaps at the same IoU
    (``kind_mismatches``; None: none)."""

    name: str
    apex_score: np.ndarray  # (L,)
    threshold: np.ndarray  # (L,)
    events: list[ExpressionEvent]
    matches: list[int | None] = field(default_factory=list)
    threshold_term: list[str] = field(default_factory=list)  # (L,)
    decoder: DecoderConfig | None = None
    calibrated_s: float | None = None
    mismatches: list[int | None] = field(default_factory=list)


def featurize(
    path: Path, progress: bool = True, warn: Callable[[str], None] | None = None
) -> Featurized:
    """Decode, align and featurize every frame (the loop of ``stream.datasets.features``).

    Raises MexliveError for a missing or undecodable file, an empty one, or no face at all; a
    file that holds fewer frames than its header promises is featurized to its end and
    ``warn`` is told.
    """
    from tqdm import tqdm

    from engines.context import ContextTracker
    from stream.face.align import FaceTracker
    from stream.face.features import FeatureExtractor
    from stream.face.nodes import NodeFlow
    from stream.live.context import BrowMotion
    from stream.synthetic.decode import VideoReader

    tracker, extractor, nodes, context, brows = (
        FaceTracker(),
        FeatureExtractor(),
        NodeFlow(),
        ContextTracker(),
        BrowMotion(),  # the live spottable rule's brows (the context stage's)
    )
    values, valid, seq, t_s, node_rows, speaking, blink = [], [], [], [], [], [], []
    brows_moving = []
    residuals, residual_ok, contexts = [], [], []
    with VideoReader(path, allow_short=True) as video:
        fps = video.fps or 30.0
        bar = tqdm(
            total=video.declared_frames or None,
            desc="featurizing",
            unit="frame",
            file=sys.stderr,
            disable=not progress,
            leave=False,
        )
        with bar:
            while (source := video.read()) is not None:
                # The file's own clock when it has one: a variable-rate video keeps its timing.
                t = source.pts_s if source.pts_s is not None else source.index / fps
                aligned = tracker.update(source.image, source.index, round(t * 1e9), t)
                row = extractor.update(aligned)
                node = nodes.update(aligned)
                node_rows.append(node_group_motion(node))
                residuals.append(node.residual)
                residual_ok.append(node.valid)
                state = context.update(aligned.landmarks_px, t, aligned.ok)
                contexts.append(state)
                speaking.append(state.speaking)
                blink.append(state.blink)
                if aligned.ok:
                    brows_moving.append(bool(brows.update(t, node.residual, node.valid)))
                else:
                    brows.reset()
                    brows_moving.append(False)
                values.append(row.values.copy())  # the extractor reuses its buffer
                valid.append(row.valid)
                seq.append(source.index)
                t_s.append(t)
                bar.update()
    if video.ended_early is not None and warn is not None:
        warn(f"{video.ended_early}; every frame there was analysed")
    if not seq:
        raise DataError(f"{path}: holds no video frame")
    valid_rows = np.array(valid, bool)
    if not valid_rows.any():
        raise DataError(f"{path}: no face found in any of its {len(seq)} frames")
    return Featurized(
        path=path,
        fps=fps,
        seq=np.array(seq, np.int64),
        t_s=np.array(t_s, np.float64),
        values=np.stack(values),
        valid=valid_rows,
        names=tuple(extractor.names),
        node_groups=np.stack(node_rows),
        speaking=np.array(speaking, bool),
        blink=np.array(blink, bool),
        brows_moving=np.array(brows_moving, bool),
        nodes=np.stack(residuals),
        nodes_valid=np.stack(residual_ok),
        contexts=contexts,
    )


def node_group_motion(row) -> np.ndarray:
    """(G,) the strongest non-stable node's residual per node group (``stream.face.nodes.
    GROUPS``) over the offsets of one ``NodeRow``, px in the aligned face."""
    from stream.face.nodes import GROUPS, NODE_GROUPS, STABLE_NODES

    magnitude = np.linalg.norm(row.residual, axis=-1) * row.valid[:, None]  # (O, N)
    per_node = magnitude.max(axis=0)  # (N,)
    out = np.zeros(len(GROUPS), np.float32)  # (G,)
    for i, group in enumerate(NODE_GROUPS):
        if i not in STABLE_NODES:
            g = GROUPS.index(group)
            out[g] = max(out[g], per_node[i])
    return out


def make_stage(spotter: str, weights: str | None = None) -> SpottingStage:
    """The live spotting stage for one spotter; WeightsError when the learned spotter's
    weights do not fit the current feature layout (found before any featurizing)."""
    from stream.live.spotting import SpottingStage

    # torch on the CPU: an offline look needs no GPU, and it decodes exactly as the tests do.
    return SpottingStage(lambda event: None, weights=weights, backend="torch", spotter=spotter)


def run_spotter(features: Featurized, stage: SpottingStage) -> SpotterTrace:
    """The live stage over every row, fed as ``benchmarks.bench_spotting.replay`` feeds it."""
    score = np.full(features.length, np.nan)  # (L,)
    threshold = np.full(features.length, np.nan)  # (L,)
    terms = [""] * features.length
    calibrated_s = None
    image = np.zeros((2, 2, 3), np.uint8)  # the stage reads only the feature row
    for i in range(features.length):
        seq, t_ns = int(features.seq[i]), round(features.t_s[i] * 1e9)
        frame = Frame(seq, t_ns, float(features.t_s[i]), image)
        row = FeatureRow(seq, t_ns, features.values[i], bool(features.valid[i]))
        if features.nodes is not None and features.nodes_valid is not None:
            row.nodes, row.nodes_valid = features.nodes[i], features.nodes_valid[i]
        results = FrameResults(features=row)
        if features.contexts is not None:  # what the live context stage sets
            results.context = features.contexts[i]
        stage(frame, results)
        if results.apex_score is not None:
            score[i] = results.apex_score
        if results.apex_threshold is not None:
            threshold[i] = results.apex_threshold
            terms[i] = stage.decoder.threshold_term
        if calibrated_s is None and stage.baseline is not None:
            calibrated_s = float(features.t_s[i])
    stage.finish()  # the video ended: decide what is still open
    stage.close()
    return SpotterTrace(
        stage.kind,
        score,
        threshold,
        list(stage.events),
        threshold_term=terms,
        decoder=stage.decoder.config,
        calibrated_s=calibrated_s,
    )


def match_truth(
    events: Sequence[ExpressionEvent], truth: Sequence[TruthEvent], iou: float = 0.5
) -> list[int | None]:
    """Per event, the index in ``truth`` of the row it matches (same kind, IoU ≥ ``iou``,
    one to one as MEGC scores it), or None."""
    matches: list[int | None] = [None] * len(events)
    for kind in ("micro", "macro"):
        mine = [i for i, e in enumerate(events) if e.kind == kind]
        rows = [j for j, t in enumerate(truth) if t.kind == kind]
        pred = [(events[i].onset_frame, events[i].offset_frame) for i in mine]
        spans = [(truth[j].onset, truth[j].offset) for j in rows]
        for p, t in spotting_matches(pred, spans, iou):
            matches[mine[p]] = rows[t]
    return matches


def kind_mismatches(
    events: Sequence[ExpressionEvent],
    truth: Sequence[TruthEvent],
    matches: Sequence[int | None],
    iou: float = 0.5,
) -> list[int | None]:
    """Per event without a match, the truth row of the other kind (micro for a spotted macro,
    and back) that it overlaps at IoU ≥ ``iou``, or None: the spotter found that expression
    and called it the wrong kind, which is not the same as finding nothing there."""
    out: list[int | None] = [None] * len(events)
    for i, (event, match) in enumerate(zip(events, matches, strict=True)):
        if match is not None:
            continue
        span = (event.onset_frame, event.offset_frame)
        others = [
            (interval_iou(span, (row.onset, row.offset)), j)
            for j, row in enumerate(truth)
            if row.kind in ("micro", "macro") and row.kind != event.kind
        ]
        best = max(others, default=(0.0, None))
        out[i] = best[1] if best[0] >= iou else None
    return out


def emotion_label(event: ExpressionEvent) -> str:
    """The event's emotion, or "?" when its probabilities are uniform (the classic spotter
    names no emotion by itself)."""
    probs = list(event.emotion_probs.values())
    return event.emotion if probs and max(probs) - min(probs) > 1e-3 else "?"
