"""The one builder: source → capture → stages → sinks, from one ``LiveConfig``.

Every path that runs the live pipeline goes through here (the CLI, many streams, the Gradio
preview, the soak, the fault drill): it opens the source spec, makes the per-stream emit
function, the face analysis, the recognizer and the spotter, asks the privacy factory for its
stage, appends the caller's stages and hands back a ``LiveRun`` whose ``pipeline`` is ready to
``start()``. The caller owns the ``EventBus`` (its sinks: event log, console, HUD, page) and
everything that is not a stage (the window, metrics export, recordings).

Stage order: ``first_stages``, align, features, context, spot, privacy, ``extra_stages``. With
``limits.stage_threads == 2`` and the analysis on, ``first_stages`` and align run on the
pipeline's worker and the rest on its second thread.

API:
    LiveConfig(source, open, limits, stream_name, analysis, spotter, recognizer, keep_rows,
               privacy, first_stages, extra_stages)              frozen; defaults = the CLI's
    build_live(config, bus, log=None) -> LiveRun                  one stream
    build_many(config, specs, bus, log=None) -> list[LiveRun]     one batched spotter engine
    bare_pipeline(source, bus, stages, **limits) -> Pipeline      just these stages (tests)
    LiveRun: pipeline, source, emit, analysis, spotter, privacy, name, source_spec, summary

Example:
    bus = EventBus([JsonlEventLog("events.jsonl")])
    config = LiveConfig(
        source="synthetic:7",
        limits=RunLimits(duration_s=20),
        recognizer=RecognizerOptions(backend="torch"),
        extra_stages=lambda parts: [Stage("page", on_frame)],   # or a tuple of Stages
    )
    run = build_live(config, bus, log=print)
    summary = run.pipeline.run()          # start, wait for the end, stop
    print(summary.one_line(), len(run.spotter.events))
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from stream.capture.sources import Source, open_source
from stream.live.analysis import FaceAnalysis
from stream.live.context import ContextGate, ContextStage
from stream.live.pipeline import Pipeline, RunSummary, Stage
from stream.live.spotting import SpottingStage
from stream.output.events import EventBus, StatusEvent

EmitFn = Callable[[str, dict[str, Any], int | None], None]
LogFn = Callable[[str], None]


class StageProvider(Protocol):
    """What a privacy factory returns (``stream.privacy.live.PrivacyStage``)."""

    def stage(self) -> Stage: ...

    def close(self) -> None: ...


PrivacyFactory = Callable[[EmitFn, float | None], StageProvider | None]


@dataclass(frozen=True)
class OpenOptions:
    """How a source spec is opened (``stream.capture.sources.open_source``)."""

    fps: float | None = None  # the synthetic source's rate (None: 30)
    realtime: bool = True  # synthetic: paced to its fps, not as fast as possible
    open_timeout_s: float = 5.0  # URLs
    read_timeout_s: float = 5.0  # URLs
    decode_threads: int = 0  # files and URLs: 0, FFmpeg's frame threads; n, that many


@dataclass(frozen=True)
class RunLimits:
    """The pipeline's ring, limits and stall settings (``Pipeline`` arguments)."""

    ring_capacity: int = 8
    max_frames: int | None = None
    duration_s: float | None = None
    stall_timeout_s: float = 2.0
    drop_report_s: float = 1.0
    drain_timeout_s: float = 2.0
    ring_policy: str | None = None  # None: drop_oldest for live sources, block for files
    backoff_s: tuple[float, float] | None = None  # reconnect backoff; None: the thread's own
    # 1: every stage on one worker. 2: alignment on one thread, features / spotter / sinks on
    # a second, frames in order (``Pipeline(front_stages=...)``); same events either way.
    # Inline, 2 gains nothing: dlib's predictor holds the GIL (docs/benchmarks.md "End to end").
    stage_threads: int = 1
    # "process" (default): face alignment in a child process (stream.face.remote) on the
    # second core while this one computes features and the spotter; implies two stage
    # threads; same events. It is spawned, so a script that builds pipelines needs the
    # ``if __name__ == "__main__":`` guard. "inline": in this process (one core per stream).
    align: str = "process"


@dataclass(frozen=True)
class SpotterOptions:
    enabled: bool = True
    weights: str | None = None  # None: the shipped engines/weights/spotter.pt
    backend: str = "auto"  # engines.runtime.backends.BACKENDS
    kind: str = "learned"  # stream.live.spotting.SPOTTERS: "learned" | "classic"
    # hold back a micro on a blink and an expression during speech without the upper face
    context_gate: bool = True
    threshold_scale: float = 1.0  # multiplies the decoder's threshold (--threshold-scale)


@dataclass(frozen=True)
class RecognizerOptions:
    enabled: bool = True  # used when its weights are present (said once in the log)
    weights: str | None = None  # None: the shipped engines/weights/recognizer.pt
    backend: str = "onnxruntime"  # stream.live.recognition.RECOGNIZER_BACKENDS


@dataclass(frozen=True)
class LiveConfig:
    """Everything one stream's pipeline is built from.

    Args:
        source: a spec for ``open_source`` ("0", a file, a URL, "synthetic[:seed]") or a
            Source object (not opened: ``Pipeline.start`` opens it).
        open: how a spec is opened. limits: the pipeline's ring and limits.
        stream_name: the ``stream`` field of every event (``build_many``: the base name).
        analysis: face alignment and features (False: only the caller's stages, no spotter).
        spotter / recognizer: the spotter and the recognizer fused with it.
        keep_rows: keep every feature row (``--dump-features``: ``analysis.save_features``).
        privacy: ``factory(emit, fps) -> stage provider | None`` for the privacy stage
            (``functools.partial(stream.privacy.live.privacy_stage, options)``).
        first_stages: stages before the analysis.
        extra_stages: stages after the spotter and privacy: a tuple, or a function of the
            ``LiveParts`` built so far (to reach the spotter, the privacy stage, the name).
    """

    source: str | Source = "synthetic"
    open: OpenOptions = field(default_factory=OpenOptions)
    limits: RunLimits = field(default_factory=RunLimits)
    stream_name: str = "cam0"
    analysis: bool = True
    spotter: SpotterOptions = field(default_factory=SpotterOptions)
    recognizer: RecognizerOptions = field(default_factory=RecognizerOptions)
    keep_rows: bool = False
    privacy: PrivacyFactory | None = None
    first_stages: tuple[Stage, ...] = ()
    extra_stages: Sequence[Stage] | Callable[[LiveParts], Sequence[Stage]] = ()

    def make_source(self, spec: str | Source | None = None) -> Source:
        """The Source of ``spec`` (default: ``self.source``), not opened; a Source as given."""
        spec = self.source if spec is None else spec
        if not isinstance(spec, str):
            return spec
        return open_source(
            spec,
            fps=self.open.fps,
            realtime=self.open.realtime,
            open_timeout_s=self.open.open_timeout_s,
            read_timeout_s=self.open.read_timeout_s,
            decode_threads=self.open.decode_threads,
        )


@dataclass(kw_only=True)
class LiveParts:
    """One stream's parts before its Pipeline exists (what ``extra_stages`` may use)."""

    name: str
    source_spec: str
    source: Source
    emit: EmitFn  # (status, detail, seq) → a StatusEvent of this stream on the bus
    analysis: FaceAnalysis | None
    spotter: SpottingStage | None
    privacy: StageProvider | None


@dataclass(kw_only=True)
class LiveRun(LiveParts):
    """A built stream: its parts, its Pipeline (not started) and, once stopped, its summary."""

    pipeline: Pipeline
    summary: RunSummary | None = None

    def metric_labels(self) -> dict[str, str]:
        """The Prometheus exporter's info labels for this run."""
        engine = self.spotter.engine if self.spotter is not None else None
        return {
            "source": self.source.name,
            "stream": self.name,
            "backend": engine.name if engine else "none",
            "precision": getattr(engine, "precision", "fp32") if engine else "none",
            "model_sha256": self.spotter.model_info["sha256"] if self.spotter else "",
        }


def build_live(config: LiveConfig, bus: EventBus, log: LogFn | None = None) -> LiveRun:
    """One stream's pipeline from ``config``; ``log`` gets the lines saying which spotter
    backend and recognizer were chosen (None: silent). Bad input (a source spec that cannot be
    opened, weights that do not load) raises before any thread starts."""
    source = config.make_source()
    recognizer = None
    if config.analysis and config.spotter.enabled:
        recognizer = _recognizers(config.recognizer, 1, log)[0]
    return _build(config, config.stream_name, source, bus, log, None, recognizer)


def build_many(
    config: LiveConfig, specs: Sequence[str], bus: EventBus, log: LogFn | None = None
) -> list[LiveRun]:
    """One pipeline per source spec, named ``stream_names(config.stream_name, len(specs))``;
    the spotter steps of all streams meet in one batched engine (``SharedSteps``), each stream
    gets its own recognizer. Every source is made before any pipeline; the config's ``source``
    is not used."""
    shared, recognizers = None, [None] * len(specs)
    if config.analysis and config.spotter.enabled:
        if config.spotter.kind == "learned":  # the classic has no engine to share
            shared = _shared_steps(config.spotter, len(specs), log)
        recognizers = _recognizers(config.recognizer, len(specs), log)
    sources = [config.make_source(spec) for spec in specs]
    names = stream_names(config.stream_name, len(specs))
    return [
        _build(config, name, source, bus, log, shared, recognizer, spec)
        for name, spec, source, recognizer in zip(names, specs, sources, recognizers, strict=True)
    ]


def stream_names(base: str, count: int) -> list[str]:
    """cam0 → cam0, cam1, …; a name without a trailing number gets one (door → door0, …)."""
    stem = re.sub(r"\d+$", "", base) or "cam"
    return [f"{stem}{i}" for i in range(count)]


def bare_pipeline(
    source: Source,
    bus: EventBus,
    stages: Sequence[Stage] = (),
    stream_name: str = "cam0",
    **limits: Any,
) -> Pipeline:
    """A pipeline of just ``stages`` (no analysis, no spotter): the capture, ring and worker
    mechanics; ``limits`` are ``RunLimits`` fields."""
    config = LiveConfig(
        source=source,
        limits=RunLimits(**limits),
        stream_name=stream_name,
        analysis=False,
        extra_stages=tuple(stages),
    )
    return build_live(config, bus).pipeline


def _build(
    config: LiveConfig,
    name: str,
    source: Source,
    bus: EventBus,
    log: LogFn | None,
    shared,
    recognizer,
    source_spec: str | None = None,
) -> LiveRun:
    def emit(status: str, detail: dict[str, Any], seq: int | None) -> None:
        bus.emit(StatusEvent(status, name, seq=seq, detail=detail))

    analysis = spotter = privacy = context = None
    stages = list(config.first_stages)
    front_stages = 0
    if config.analysis:
        align_process = config.limits.align == "process"
        learned = config.spotter.enabled and config.spotter.kind == "learned"
        analysis = FaceAnalysis(
            emit, keep_rows=config.keep_rows, align_process=align_process, nodes=learned
        )
        align, *rest = analysis.stages()
        stages.append(align)
        if config.limits.stage_threads == 2 or align_process:
            front_stages = len(stages)  # the front thread waits on the child meanwhile
        stages += rest
        context = ContextStage(bus.emit, name)
        stages.append(context.stage())
        if config.spotter.enabled:
            spotter = SpottingStage(
                bus.emit,
                name,
                weights=config.spotter.weights,
                on_status=emit,
                backend=config.spotter.backend,
                shared=shared,
                recognizer=recognizer,
                spotter=config.spotter.kind,
                context=context,
                gate=ContextGate() if config.spotter.context_gate else None,
                threshold_scale=config.spotter.threshold_scale,
            )
            if log is not None and spotter.engine is None:
                log("mexlive: the classic spotter (training-free: region motion z-scores)")
            elif log is not None and shared is None:
                log(f"mexlive: spotter on {spotter.engine.name} ({spotter.engine.reason})")
            stages.append(spotter.stage())
            if not spotter.needs_nodes:  # weights of the region rows: skip the node front end
                analysis.nodes = None
    if config.privacy is not None:
        privacy = config.privacy(emit, source.fps)
        if privacy is not None:  # after the analysis (of clean frames), before record / window
            stages.append(privacy.stage())
    spec = source_spec or (config.source if isinstance(config.source, str) else source.name)
    parts = LiveParts(
        name=name,
        source_spec=spec,
        source=source,
        emit=emit,
        analysis=analysis,
        spotter=spotter,
        privacy=privacy,
    )
    extra = config.extra_stages
    stages += extra(parts) if callable(extra) else extra
    limits = config.limits
    pipeline = Pipeline(
        source,
        bus,
        stages,
        stream_name=name,
        ring_capacity=limits.ring_capacity,
        max_frames=limits.max_frames,
        duration_s=limits.duration_s,
        drop_report_s=limits.drop_report_s,
        stall_timeout_s=limits.stall_timeout_s,
        drain_timeout_s=limits.drain_timeout_s,
        ring_policy=limits.ring_policy,
        front_stages=front_stages,
    )
    if limits.backoff_s is not None:
        pipeline.capture.backoff_s = limits.backoff_s
    if context is not None:
        pipeline.end_of_stream.append(context.finish)
    if spotter is not None:
        pipeline.end_of_stream.append(spotter.finish)
    if analysis is not None:
        analysis.ready()  # the alignment child has its models (or this raises, bad input)
        pipeline.on_finish.append(analysis.close)
    built = {key: getattr(parts, key) for key in parts.__dataclass_fields__}
    return LiveRun(**built, pipeline=pipeline)


def _shared_steps(options: SpotterOptions, n_streams: int, log: LogFn | None):
    """One engine for all streams, stepped as one batch (``engines.runtime.batching``)."""
    from engines.runtime.backends import make_engine
    from engines.runtime.batching import SharedSteps
    from engines.runtime.cache import default_cache_dir
    from engines.weights import load_spotter, verify_spotter
    from stream.face.features import feature_names

    names = feature_names()
    path, manifest = verify_spotter(options.weights, feature_names=names)
    loaded = []  # the torch model, if something needed it

    def model():
        if not loaded:
            loaded.append(load_spotter(path, manifest, feature_names=names)[0])
        return loaded[0]

    engine = make_engine(options.backend, model, Path(default_cache_dir()), manifest["sha256"])
    if log is not None:
        log(f"mexlive: {n_streams} streams on one {engine.name} engine ({engine.reason})")
    width = manifest.get("n_features")
    return SharedSteps(engine, width if isinstance(width, int) else model().config.n_features)


def _recognizers(options: RecognizerOptions, n: int, log: LogFn | None) -> list:
    """One recognizer per stream, or Nones (disabled, or no shipped weights: said once)."""
    from stream.live.recognition import EventRecognizer, recognizer_from_flags

    say = log if log is not None else (lambda line: None)
    first = recognizer_from_flags(options.weights, not options.enabled, say, options.backend)
    if first is None:
        return [None] * n
    rest = (EventRecognizer(options.weights, backend=options.backend) for _ in range(n - 1))
    return [first, *rest]
