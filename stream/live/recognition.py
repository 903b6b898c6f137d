"""Live recognition of spotted intervals: a ring of aligned faces, a flow stack per event, and
the fusion of the recognizer's probabilities with the spotter's emotion head.

Per frame the stage only copies the aligned face (160² bytes) and its landmarks into a
preallocated ring (``FaceHistory``); the flow stack (``stream.face.flow_stack``: ``steps`` dense
flows) and the recognizer's forward pass run once per EVENT, when the decoder emits it. A gap,
a lost face or a re-detection empties the ring: no stack spans a discontinuity.

Fusion: ``emotion_probs = (1 - w) · spotter + w · recognizer`` (``w = recognizer_weight``); the
event's ``emotion_sources`` records both inputs, the rule and the recognizer's variant and
sha256. When the interval's faces are no longer (or never were) in the ring, the spotter's
probabilities stand alone and ``emotion_sources`` says why.

Example:
    recognizer = EventRecognizer()                        # shipped weights, sha256-checked
    stage = SpottingStage(emit, recognizer=recognizer)    # observe + fuse happen inside
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from engines.labels import EMOTIONS
from stream.contracts import FrameResults
from stream.face.flow_stack import FlowStack, StackConfig, flow_stack, step_frames

RECOGNIZER_BACKENDS = ("torch", "onnxruntime")


class FaceHistory:
    """The last ``capacity`` aligned faces by frame index; preallocated on the first face."""

    def __init__(self, capacity: int = 300) -> None:
        self.capacity = capacity
        self._faces: np.ndarray | None = None  # (N, S, S) uint8
        self._landmarks = np.zeros((capacity, 68, 2), np.float32)  # (N, 68, 2)
        self._seq = np.full(capacity, -1, np.int64)  # frame index held by each slot

    def add(self, seq: int, face: np.ndarray, landmarks: np.ndarray) -> None:
        if self._faces is None or self._faces.shape[1:] != face.shape:
            self._faces = np.zeros((self.capacity, *face.shape), np.uint8)
            self._seq[:] = -1
        slot = seq % self.capacity
        self._faces[slot] = face
        self._landmarks[slot] = landmarks
        self._seq[slot] = seq

    def clear(self) -> None:
        self._seq[:] = -1

    def has(self, seq: int) -> bool:
        return seq >= 0 and self._seq[seq % self.capacity] == seq

    def face(self, seq: int) -> np.ndarray:
        assert self._faces is not None and self.has(seq)
        return self._faces[seq % self.capacity]  # (S, S) uint8 view

    def landmarks(self, seq: int) -> np.ndarray:
        return self._landmarks[seq % self.capacity]  # (68, 2)


class EventRecognizer:
    """The MPFNet-style recognizer applied to spotted intervals.

    Args:
        weights: recognizer weights (default: the shipped ``engines/weights/recognizer.pt``,
            checked against ``recognizer.json``; WeightsError when missing or altered).
        history_frames: faces kept (300 = 10 s at 30 fps, 2.5 s at 120 fps).
        recognizer_weight: w of the fusion, 0..1.
        variant: "P" or "C" (default: the one the manifest chose on validation).
        backend: "torch" (the reference) or "onnxruntime" (the variant's graph, exported to
            ``cache_dir`` on first use: ~5x faster per event on one CPU thread).
    """

    def __init__(
        self,
        weights: str | Path | None = None,
        history_frames: int = 300,
        recognizer_weight: float = 0.5,
        variant: str | None = None,
        backend: str = "torch",
        cache_dir: str | Path | None = None,
    ) -> None:
        from engines.weights import verify_recognizer

        if not 0.0 <= recognizer_weight <= 1.0:
            raise ValueError("recognizer_weight must be in [0, 1]")
        if backend not in RECOGNIZER_BACKENDS:
            raise ValueError(f"recognizer backend {backend!r}: one of {RECOGNIZER_BACKENDS}")
        # The manifest describes the model (checked without torch); the torch model itself is
        # loaded only for the torch backend or to export the ONNX graph the first time.
        self._weights, self.manifest = verify_recognizer(weights)
        self._model = None
        described = self.manifest.get("model") or {}
        if not {"steps", "size", "live_variant"} <= set(described):
            described = vars(self.model.config)  # an older manifest: ask the model
        self.variant = variant or described["live_variant"]
        self.config = StackConfig(steps=described["steps"], size=described["size"])
        self.history = FaceHistory(history_frames)
        self.weight = recognizer_weight
        self.info = {
            "variant": self.variant,
            "sha256": self.manifest.get("sha256", ""),
            "backend": backend,
        }
        self.backend, self.backend_reason, self._onnx = backend, "reference", None
        if backend == "onnxruntime":
            from engines.runtime.cache import default_cache_dir
            from engines.runtime.onnx_recognizer import cached_recognizer_graph

            cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
            sha = self.manifest.get("sha256", "unknown")
            self._onnx, self.backend_reason = cached_recognizer_graph(
                sha, self.variant, cache, self._export
            )
        self._warm_up()

    def _export(self, path: Path) -> None:
        from engines.runtime.export_recognizer import export_recognizer

        export_recognizer(self.model, path, self.variant)

    @property
    def model(self):
        """The recognizer in torch (``engines.models.recognizer``), loaded on first use."""
        if self._model is None:
            from engines.weights import load_recognizer

            self._model, _ = load_recognizer(self._weights, self.manifest)
        return self._model

    def _warm_up(self) -> None:
        """One thread (an event's forward pass is small: a second thread only waits on this
        shared CPU, 5-10x slower under load), and a first pass now, not on the first event."""
        if self._onnx is None:
            import torch

            torch.set_num_threads(1)
        size, steps = self.config.size, self.config.steps
        still = np.zeros((2, steps, size, size), np.float32)  # (2, T, S, S)
        self.probabilities(FlowStack(still, np.zeros((size, size), np.float32), ()))

    def observe(self, results: FrameResults) -> None:
        """Per frame: keep the aligned face (if any) of this frame's results."""
        aligned = results.aligned
        if aligned is None:
            return
        if results.gap or aligned.redetected or not aligned.ok:
            self.history.clear()  # no flow across a discontinuity
        if aligned.ok and aligned.face is not None:
            self.history.add(aligned.seq, aligned.face, aligned.landmarks)

    def stack(self, onset: int, apex: int) -> FlowStack | None:
        """The onset→apex stack from the ring, or None when its faces are not all there."""
        if apex <= onset:
            return None
        ends = step_frames(onset, apex, self.config.steps)
        frames = (onset, *ends)
        if not all(self.history.has(f) for f in frames):
            return None
        faces = [self.history.face(f) for f in frames]
        return flow_stack(faces, self.history.landmarks(onset), self.config, ends)

    def probabilities(self, stack: FlowStack, variant: str | None = None) -> np.ndarray:
        """(E,) probabilities over EMOTIONS for one stack."""
        if self._onnx is not None and variant in (None, self.variant):
            return self._onnx.probabilities(stack.flow[None], stack.mask[None])[0]
        import torch

        flow = torch.from_numpy(stack.flow)[None]  # (1, 2, T, S, S)
        mask = torch.from_numpy(stack.mask)[None]  # (1, S, S)
        return self.model.probabilities(flow, mask, variant or self.variant)[0].numpy()

    def fuse(
        self, spotter_probs: dict[str, float], onset: int, apex: int
    ) -> tuple[dict[str, float], dict[str, Any], float]:
        """(fused emotion_probs, emotion_sources, milliseconds spent) for one event."""
        t0 = time.perf_counter()
        stack = self.stack(onset, apex)
        sources: dict[str, Any] = {
            "spotter": dict(spotter_probs),
            "recognizer": None,
            "recognizer_model": self.info,
        }
        if stack is None:
            sources.update(fusion="spotter_only", reason="faces of the interval not in history")
            return dict(spotter_probs), sources, (time.perf_counter() - t0) * 1e3
        recognized = self.probabilities(stack)  # (E,)
        spotted = np.array([spotter_probs[e] for e in EMOTIONS])  # (E,)
        fused = (1.0 - self.weight) * spotted + self.weight * recognized  # (E,)
        sources.update(
            recognizer={e: round(float(p), 4) for e, p in zip(EMOTIONS, recognized, strict=True)},
            fusion="mean",
            recognizer_weight=self.weight,
        )
        probs = {e: round(float(p), 4) for e, p in zip(EMOTIONS, fused, strict=True)}
        return probs, sources, (time.perf_counter() - t0) * 1e3


def recognizer_from_flags(
    weights: str | None, disabled: bool, log=print, backend: str = "torch"
) -> EventRecognizer | None:
    """The recognizer run_live wants: None when ``--no-recognizer``, or when no weights were
    named and the shipped ones are absent (said once); named weights must load."""
    from engines.weights import DEFAULT_RECOGNIZER

    if disabled:
        return None
    if weights is None and not DEFAULT_RECOGNIZER.is_file():
        log(f"mexlive: no recognizer weights at {DEFAULT_RECOGNIZER}: spotter emotions only")
        return None
    recognizer = EventRecognizer(weights, backend=backend)
    log(
        f"mexlive: recognizer MPFNet-{recognizer.variant} on {backend} "
        f"({recognizer.backend_reason}), fused with the spotter's emotions"
    )
    return recognizer
