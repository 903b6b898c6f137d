"""The recognizers a privacy sticker is evaluated against: black boxes over a ``Clip``.

A ``Recognizer`` is anything with ``name`` and ``recognize(clip) -> probabilities (3,)`` over
``EMOTIONS``; an all-zero answer means nothing was recognised (``predicted`` → "none").

- ``SpotterRecognizer``: a mexlive spotter (shipped, or an independently trained variant) over
  the clip's feature rows, its emotion read as the live decoder does (score-weighted mean of
  the emotion probabilities over the half-maximum span around the strongest apex score).
- ``MPFNetRecognizer``: the MPFNet-style recognizer (shipped or a variant) on the onset→apex
  flow stack of the aligned faces, given the clip's annotated onset and apex frames.
- ``PipelineRecognizer``: the whole live path, spotter → decoder → MPFNet fusion, reading no
  annotation; a clip in which it decides no interval is "none".
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from engines.labels import EMOTIONS
from stream.privacy.attack import Clip, ClipAnalysis

if TYPE_CHECKING:
    from stream.live.recognition import EventRecognizer


class Recognizer(Protocol):
    """Black box: a clip in, emotion probabilities (3,) over ``EMOTIONS`` out."""

    name: str

    def recognize(self, clip: Clip) -> np.ndarray: ...


class SpotterRecognizer:
    """A mexlive spotter's emotion head as a clip recognizer (see the module docstring)."""

    def __init__(self, name: str, weights: str | None = None) -> None:
        import torch

        from engines.weights import load_spotter
        from stream.face.features import feature_names

        self.name = name
        self.model, self.manifest = load_spotter(weights, feature_names=feature_names())
        self._names = feature_names()
        self._torch = torch

    def recognize(self, clip: Clip) -> np.ndarray:
        return decoder_emotion(*self.scores(clip))

    def scores(self, clip: Clip) -> tuple[np.ndarray, np.ndarray]:
        """(apex score (T,), emotion probabilities (T, 3)) of every frame of the clip."""
        from engines.inputs import spotter_inputs, takes_motion, takes_nodes
        from engines.node_inputs import node_inputs

        values, valid = clip.features()
        t_s = np.arange(len(values)) / clip.fps
        if takes_nodes(self.manifest):  # landmark-node motion and context, as live
            a = clip.analysis()
            values, _ = node_inputs(a.nodes, a.nodes_valid, a.landmarks_px, valid, t_s)
        elif takes_motion(self.manifest):  # the model reads the person-normalised motion rows
            values = spotter_inputs(values, valid, t_s, self._names)
        torch = self._torch
        with torch.inference_mode():
            x = torch.from_numpy(values)[None]  # (1, T, F)
            out, _ = self.model(x, valid=torch.from_numpy(valid)[None])
            apex = out.apex[0].numpy() * valid  # (T,)
            probs = torch.softmax(out.emotion_logits[0], dim=-1).numpy()  # (T, 3)
        return apex, probs


class MPFNetRecognizer:
    """mexlive's MPFNet-style recognizer as a clip recognizer, through the live code path.

    Like the recognition protocol of CASME II-style benchmarks, it reads the clip's annotated
    onset and apex frames (indices, not pixels) and classifies the onset→apex flow stack of
    the aligned faces it sees (``stream.live.recognition.EventRecognizer``: the same ring, stack
    and forward pass a live event gets). A clip whose faces were lost on the rise gets a
    uniform answer.
    """

    def __init__(self, name: str, weights: str | Path | None = None) -> None:
        from stream.live.recognition import EventRecognizer

        self.name = name
        # history: a clip's rise is < 1 s; weight 1: the recognizer's own probabilities
        self.live = EventRecognizer(weights, history_frames=64, recognizer_weight=1.0)

    def recognize(self, clip: Clip) -> np.ndarray:
        uniform = np.full(len(EMOTIONS), 1.0 / len(EMOTIONS))
        if clip.apex <= clip.onset:
            return uniform
        fill_history(self.live, clip.analysis())
        stack = self.live.stack(clip.onset, clip.apex)  # None when a face was lost
        return uniform if stack is None else self.live.probabilities(stack)


def fill_history(live: EventRecognizer, analysis: ClipAnalysis) -> None:
    """The recognizer's ring holds the clip's aligned faces, as if it had run live."""
    live.history.clear()
    for seq in np.flatnonzero(analysis.faces_ok):
        live.history.add(int(seq), analysis.faces[seq], analysis.landmarks[seq])


class PipelineRecognizer:
    """mexlive's whole live path as a clip recognizer: the spotter, the live decoder, then
    the MPFNet recognizer fused with the spotter's emotion on the interval the DECODER chose
    (no annotation is read). The strongest decided interval that overlaps the truth answers;
    when none does, the answer is all zeros: nothing recognised (``predicted`` → "none").
    """

    def __init__(self, name: str) -> None:
        from stream.live.recognition import EventRecognizer

        self.name = name
        self.spotter = SpotterRecognizer(name)
        self.live = EventRecognizer(history_frames=128)  # the live fusion weight

    def recognize(self, clip: Clip) -> np.ndarray:
        from engines.decoders import decode_trace

        analysis = clip.analysis()
        apex, probs = self.spotter.scores(clip)  # (T,), (T, 3)
        decided = decode_trace(apex, probs, clip.fps, analysis.valid)
        hits = [s for s in decided if s.onset_seq <= clip.offset and s.offset_seq >= clip.onset]
        if not hits:
            return np.zeros(len(EMOTIONS))
        best = max(hits, key=lambda s: s.apex_score)
        fill_history(self.live, analysis)
        fused, _, _ = self.live.fuse(best.emotion_probs, best.onset_seq, best.apex_seq)
        return np.array([fused[e] for e in EMOTIONS])


def decoder_emotion(apex: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """The live decoder's emotion: score-weighted mean of probs (T, 3) over the half-maximum
    span of apex (T,) around its peak; uniform when the clip has no score at all."""
    peak = int(np.argmax(apex))
    if apex[peak] <= 0:
        return np.full(len(EMOTIONS), 1.0 / len(EMOTIONS))
    half = apex[peak] / 2
    left = peak
    while left > 0 and apex[left - 1] >= half:
        left -= 1
    right = peak
    while right < len(apex) - 1 and apex[right + 1] >= half:
        right += 1
    weights = apex[left : right + 1, None]  # (K, 1)
    return (weights * probs[left : right + 1]).sum(0) / weights.sum()


def predicted(probs: np.ndarray) -> str:
    """The emotion read, or "none" for an all-zero answer (nothing recognised)."""
    return EMOTIONS[int(np.argmax(probs))] if np.any(probs > 0) else "none"
