"""The spotting stage: feature rows → spotter step → EventDecoder → expression events.

Two spotters behind one stage (``spotter=``): ``"learned"``, the trained state-space model
(its input, raw rows or the normalised motion rows, as its manifest says: ``engines/inputs.py``),
and ``"classic"``, the training-free reference (``engines/classic.py``), so a user can run both
on the same video and compare. One causal model state per stream; a gap (invalid row: no face,
dropped frames, re-detection) zeroes the state and closes the decoder's candidate, so nothing
is carried across it.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from calibration.baseline import Baseline
from engines.classic import UNIFORM, ClassicSpotter
from engines.decoders import new_decoder
from engines.decoding import DecoderConfig, Spotted, fixed_decoder
from engines.inputs import SpotterInput, takes_motion, takes_nodes
from engines.node_inputs import NodeInput
from engines.runtime.cache import default_cache_dir
from stream.contracts import FeatureRow, Frame, FrameResults
from stream.face.features import FACE_ROIS, feature_names
from stream.live.node_rows import NodeRowFiller
from stream.live.pipeline import Stage
from stream.live.recognition import EventRecognizer
from stream.output.events import ExpressionEvent

if TYPE_CHECKING:
    from engines.models.spotter import Spotter
    from engines.runtime.batching import SharedSteps
    from stream.live.context import ContextGate, ContextStage

MAG_ON = np.array([feature_names().index(f"{roi}.mag_on") for roi in FACE_ROIS])
SPOTTERS = ("learned", "classic")


class SpottingStage:
    """Runs the spotter frame by frame and emits ExpressionEvents.

    Args:
        emit: called with each ExpressionEvent.
        stream_name: the ``stream`` field.
        weights: spotter weights (default: the shipped ``engines/weights/spotter.pt``).
        decoder: decoder settings.
        backend: one of engines.runtime.backends.BACKENDS ("auto": TensorRT > torch-CUDA > ONNX
            Runtime > torch);
            the choice and its reason are in ``engine.name`` / ``engine.reason``.
        cache_dir: where the exported ONNX step graph is cached (default: user cache).
        baseline_s: seconds of face at the start (and after ``recalibrate``) from which the
            person's baseline floors the decoder threshold (``calibration/baseline.py``); an
            expression that starts before the first baseline is not reported (the spotter is
            silent until it knows the person: ``baseline_s`` of face, 2 s by default).
        on_status: ``(status, detail, seq)`` for the ``calibrated`` line.
        shared: step in this batch of streams (`engines.runtime.batching.SharedSteps`, several
        sources
            on one engine) instead of an engine of its own; ``close()`` leaves it.
        recognizer: when given, each event's interval is also recognised from its flow stack
            and the two emotion estimates are fused (``stream/live/recognition.py``).
        context: the stream's context stage: each event carries the context of its interval
            (speaking, blink, head speed).
        gate: with ``context``, what is not reported (``stream/live/context.py``: a micro on a
            blink, an expression during speaking without the upper face); None reports all.
        threshold_scale: multiplies the decoder's whole threshold (``--threshold-scale``).
        spotter: "learned" (the weights) or "classic" (training-free; ``weights``, ``backend``
            and ``shared`` do not apply, its decoder settings are its own unless ``decoder``
            is given, and its events carry uniform emotion probabilities unless the recognizer
            names the emotion).
    """

    def __init__(
        self,
        emit: Callable[[ExpressionEvent], None],
        stream_name: str = "cam0",
        weights: str | Path | None = None,
        decoder: DecoderConfig | None = None,
        baseline_s: float = 2.0,
        on_status: Callable[[str, dict, int | None], None] | None = None,
        backend: str = "auto",
        cache_dir: str | Path | None = None,
        shared: SharedSteps | None = None,
        recognizer: EventRecognizer | None = None,
        spotter: str = "learned",
        context: ContextStage | None = None,
        gate: ContextGate | None = None,
        threshold_scale: float = 1.0,
    ) -> None:
        if spotter not in SPOTTERS:
            raise ValueError(f"spotter must be one of {SPOTTERS}, not {spotter!r}")
        self.kind = spotter
        self._model: Spotter | None = None
        self.classic: ClassicSpotter | None = None
        self.inputs: SpotterInput | None = None
        self.node_inputs: NodeInput | None = None
        self._filler: NodeRowFiller | None = None
        self.shared = shared if spotter == "learned" else None
        self.slot = -1
        self.state = None
        if spotter == "classic":
            self.classic = ClassicSpotter(feature_names())
            self.manifest, self.engine = {"sha256": ""}, None
            decoder = decoder or self.classic.config.decoder
        else:
            self._load_learned(weights, backend, cache_dir)
        if decoder is None and self.node_inputs is not None and "operating_point" in self.manifest:
            # one threshold for every face, chosen on validation (engines/train/operating.py)
            decoder = fixed_decoder(self.manifest["operating_point"]["threshold"])
        if threshold_scale != 1.0:
            decoder = replace(decoder or DecoderConfig(), threshold_scale=threshold_scale)
        self._fresh = True
        self.emit = emit
        self.stream_name = stream_name
        self.decoder = new_decoder(decoder)
        self.baseline: Baseline | None = None
        self.baseline_s = baseline_s
        self.on_status = on_status or (lambda status, detail, seq: None)
        self._calibration: list[tuple[float, np.ndarray, float]] = []  # (t_s, mags, score)
        width = self._width() if self.engine is not None else len(feature_names())
        self._x = np.zeros((1, width), np.float32)  # (1, F) reused input
        self._mags: deque[tuple[int, np.ndarray]] = deque(maxlen=256)  # (seq, (R-1,) mag_on)
        self.model_info = {
            "name": "spotter" if self.engine is not None else "classic",
            "backend": self.engine.name if self.engine is not None else "numpy",
            "sha256": self.manifest.get("sha256", ""),
        }
        self.events: list[ExpressionEvent] = []
        self.recognizer = recognizer
        self.context, self.gate = context, gate
        self.suppressed: dict[str, int] = {}  # reason -> events the gate held back
        # Silent until the person is known: an event that starts before the first baseline is
        # not reported (half the learned spotter's events on short real clips did).
        self.ready_seq: int | None = None
        # every decided interval with why it was not reported (None: it was), the latest few
        # thousand: what `inspect` and the tests compare
        self.decided: deque[tuple[Spotted, str | None]] = deque(maxlen=4096)

    def _load_learned(self, weights, backend: str, cache_dir) -> None:
        from engines.runtime.backends import make_engine
        from engines.weights import verify_spotter

        # Checked without torch: the engine loads the model only if it has to (no cached
        # ONNX graph of these bytes yet, or a torch backend).
        self._weights, self.manifest = verify_spotter(weights, feature_names=feature_names())
        if takes_motion(self.manifest):
            self.inputs = SpotterInput(feature_names())
        elif takes_nodes(self.manifest):
            self.node_inputs = NodeInput()
        shared = self.shared
        self.slot = shared.join() if shared is not None else -1
        if shared is not None:
            self.engine = shared.engine  # one engine, one batched state for all streams
        else:
            self.engine = make_engine(
                backend,
                lambda: self.model,
                Path(cache_dir or default_cache_dir()),
                self.manifest["sha256"],
            )
        if self.engine.name == "torch":
            import torch

            # One stream's step is tiny: a second thread only adds hand-offs (10x slower here).
            torch.set_num_threads(1)
        self.state = self.engine.init_state(1) if shared is None else None

    def _width(self) -> int:
        """The learned model's input width: the manifest's, or the model's own."""
        width = self.manifest.get("n_features")
        return width if isinstance(width, int) else self.model.config.n_features

    @property
    def model(self) -> Spotter | None:
        """The learned spotter in torch (loaded on first use; None for the classic)."""
        if self.kind == "classic":
            return None
        if self._model is None:
            from engines.weights import load_spotter

            names = feature_names()
            self._model, _ = load_spotter(self._weights, self.manifest, feature_names=names)
        return self._model

    def stage(self) -> Stage:
        return Stage("spot", self)

    def __call__(self, frame: Frame, results: FrameResults) -> None:
        row = results.features
        assert row is not None, "the spot stage runs after the features stage"
        if self.recognizer is not None:
            self.recognizer.observe(results)
        if self.node_inputs is not None and row.nodes is None:
            self._filler = self._filler or NodeRowFiller()  # driven without the front end
            self._filler.fill(results)
        if not row.valid:
            self._reset()
            if self.classic is not None:
                self.classic.step(row.values, frame.t_s, False)
            decided = self.decoder.update(frame.seq, frame.t_s, frame.t_mono_ns, 0.0, None, False)
        else:
            score, emotion = self._step(row, frame.t_s, results.context)
            results.apex_score, results.emotion = score, emotion
            self._mags.append((frame.seq, row.values[MAG_ON]))
            if self.baseline is None:
                self._calibrate(frame, row, score)
            decided = self.decoder.update(frame.seq, frame.t_s, frame.t_mono_ns, score, emotion)
            results.apex_threshold = self.decoder.threshold
        results.calibrating = self.baseline is None
        for spotted in decided:
            self._report(spotted)

    @property
    def needs_nodes(self) -> bool:
        """Does this spotter read the node front end's rows (FeatureRow.nodes)?"""
        return self.node_inputs is not None

    def _step(self, row: FeatureRow, t_s: float, context) -> tuple[float, np.ndarray]:
        if self.classic is not None:
            return self.classic.step(row.values, t_s, True), UNIFORM
        if self.node_inputs is not None:
            values = self.node_inputs.update(row.nodes, row.nodes_valid, context, t_s, True)
        elif self.inputs is not None:
            values = self.inputs.update(row.values, t_s, True)
        else:
            values = row.values
        if self.shared is not None:
            self._fresh = False
            return self.shared.step(self.slot, values)
        self._x[0] = values
        apex, emotion, self.state = self.engine.step(self._x, self.state)  # (1,), (1, 3)
        self._fresh = False
        return float(apex[0]), emotion[0]

    def recalibrate(self) -> None:
        """Measure the baseline again from the next ``baseline_s`` seconds of face."""
        self.baseline, self._calibration = None, []

    def _calibrate(self, frame: Frame, row: FeatureRow, score: float) -> None:
        self._calibration.append((frame.t_s, row.values[MAG_ON].copy(), score))
        if frame.t_s - self._calibration[0][0] < self.baseline_s:
            return
        mags = np.stack([m for _, m, _ in self._calibration])  # (N, R-1)
        scores = np.array([s for _, _, s in self._calibration])  # (N,)
        self.baseline = Baseline.from_neutral(mags, scores, min_frames=min(10, len(scores)))
        if self.ready_seq is None:
            self.ready_seq = frame.seq
        if self.classic is None and self.node_inputs is None:  # the classic's z-scores and the
            # node rows are already the person's own: no floor from the first seconds' score
            self.decoder.baseline_floor = self.baseline.score_floor
        self._calibration = []
        capped = {
            "floor_capped": True,  # the face moved: 'c' / recalibrate() takes it again
            "measured_floor": round(self.baseline.measured_floor, 4),
        }
        self.on_status(
            "calibrated",
            {
                "score_floor": round(self.baseline.score_floor, 4),
                **(capped if self.baseline.floor_capped else {}),
                "frames": self.baseline.n_frames,
                "roi_noise_px": dict(
                    zip(FACE_ROIS, np.round(self.baseline.roi_noise, 4).tolist(), strict=True)
                ),
            },
            frame.seq,
        )

    def _reset(self) -> None:
        if self.node_inputs is not None:
            self.node_inputs.reset()
        if self.engine is None:
            return
        if not self._fresh:
            if self.shared is not None:
                self.shared.reset(self.slot)
            else:
                self.state = self.engine.init_state(1)
            self._fresh = True

    def finish(self) -> list[ExpressionEvent]:
        """The stream ended: decide what the decoder still holds and emit it; returns the
        events emitted now (an expression cut by the end of a file is still one)."""
        before = len(self.events)
        for spotted in self.decoder.reset():
            self._report(spotted)
        return self.events[before:]

    def close(self) -> None:
        """Leave the shared batch (if any), so the other streams no longer wait for this one."""
        if self.shared is not None and self.slot >= 0:
            self.shared.leave(self.slot)
            self.slot = -1

    def _report(self, spotted: Spotted) -> None:
        """A decided interval is emitted unless it started before the person was known or
        the context gate holds it back (counted in ``suppressed`` by reason)."""
        reason = None
        if self.ready_seq is None or spotted.onset_seq < self.ready_seq:
            reason = "calibrating"
        elif self.context is not None and self.gate is not None:
            context = self.context.summary(spotted.onset_seq, spotted.offset_seq)
            reason = self.gate.reason(spotted.kind, context, self._active_rois(spotted.apex_seq))
        self.decided.append((spotted, reason))
        if reason is not None:
            self.suppressed[reason] = self.suppressed.get(reason, 0) + 1
            return
        self._emit(spotted)

    def _emit(self, spotted: Spotted) -> None:
        rois = self._active_rois(spotted.apex_seq)
        context = None
        if self.context is not None:
            context = self.context.summary(spotted.onset_seq, spotted.offset_seq)
        emotion, probs, sources = spotted.emotion, spotted.emotion_probs, None
        config = self.decoder.config  # the local-maximum decoder looks ahead peak_s
        lookahead_s = config.peak_s if config.peak_s > 0 else config.lookahead_s
        latency = {"lookahead": round(lookahead_s * 1e3, 1)}
        if self.recognizer is not None:
            probs, sources, ms = self.recognizer.fuse(probs, spotted.onset_seq, spotted.apex_seq)
            emotion = max(probs, key=probs.__getitem__)
            latency["recognizer"] = round(ms, 1)
        now_ns = time.monotonic_ns()
        latency["capture_to_event"] = round((now_ns - spotted.offset_t_mono_ns) / 1e6, 1)
        event = ExpressionEvent(
            seq=spotted.decided_seq,
            stream=self.stream_name,
            kind=spotted.kind,
            onset_frame=spotted.onset_seq,
            apex_frame=spotted.apex_seq,
            offset_frame=spotted.offset_seq,
            onset_s=round(spotted.onset_s, 3),
            apex_s=round(spotted.apex_s, 3),
            offset_s=round(spotted.offset_s, 3),
            emotion=emotion,
            emotion_probs=probs,
            confidence=round(spotted.apex_score, 3),
            rois=rois,
            latency_ms=latency,
            model=self.model_info,
            emotion_sources=sources,
            context=context,
        )
        self.events.append(event)
        self.emit(event)

    def _active_rois(self, apex_seq: int, top: int = 3) -> list[str]:
        """The regions that moved most at the apex (onset-baseline flow magnitude)."""
        mags = next((m for seq, m in self._mags if seq == apex_seq), None)
        if mags is None:
            return []
        return [FACE_ROIS[i] for i in np.argsort(mags)[::-1][:top]]
