"""Prometheus metrics of a live run (``--metrics-port``), served by prometheus-client.

Not to be confused with ``engines/eval/metrics.py`` (MEGC spotting/recognition scores): these are
operational numbers for a dashboard. Everything lives in this exporter's own registry (no
process-global state), fed three ways:

- per frame, as a pipeline stage after the spotter: rates, face present, stage latencies;
- per event, as an EventBus sink: events by kind/emotion, event latency, status lines;
- at scrape time, read from the pipeline: frames captured/processed/dropped by cause,
  reconnects (so the counters are exact, never sampled).

Every series whose label values are known up front is served from start-up, at zero, before
any run (the preview waiting for Start): events for each kind × emotion, event latency for
each kind, status lines for each status, frames dropped for each cause of
``stream.contracts.DROP_CAUSES``; a Prometheus client takes a missing series for "no data",
not for "none yet", and ``rate()`` misses the first increase of a series born at 1. Stage
latencies are per stage of a run: served from ``attach`` (the run's stages) on.

Example:
    >>> exporter = MetricsExporter(port=0)  # doctest: +SKIP
    >>> exporter.start(); print(exporter.url)  # http://127.0.0.1:PORT/metrics
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.core import CounterMetricFamily
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from engines.labels import EMOTIONS, KINDS
from stream.contracts import DROP_CAUSES, Frame, FrameResults, Stage
from stream.errors import BadInputError, OutputError
from stream.output.events import STATUSES, ExpressionEvent, StatusEvent
from stream.output.rates import FrameRates

STAGE_BUCKETS_S = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.035, 0.05, 0.1, 0.2, 0.5, 1.0)
EVENT_BUCKETS_S = (0.1, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 1.5, 2.0, 5.0)


class _RingStats(Protocol):
    captured: int
    dropped: dict[str, int]  # by cause


class _Ring(Protocol):
    def stats(self) -> _RingStats: ...


class _Capture(Protocol):
    reconnects: int


class CountedPipeline(Protocol):
    """What the exporter reads at each scrape: ``stream.live.pipeline.Pipeline`` is one. (Output
    sits below live and never imports it; the pipeline's shape is all it needs.)"""

    ring: _Ring
    capture: _Capture
    processed: int
    stages: list[Stage]


class _PipelineCollector(Collector):
    """Frame accounting read from the pipeline at each scrape."""

    def __init__(self) -> None:
        self.pipeline: CountedPipeline | None = None

    def collect(self) -> Iterator[CounterMetricFamily]:
        # No run yet: every counter at zero, so a dashboard sees the series from start-up.
        captured = processed = reconnects = 0
        dropped_by_cause: dict[str, int] = {}
        if self.pipeline is not None:
            stats = self.pipeline.ring.stats()
            captured, processed = stats.captured, self.pipeline.processed
            dropped_by_cause = stats.dropped
            reconnects = self.pipeline.capture.reconnects
        yield CounterMetricFamily(
            "mexlive_frames_captured", "Frames the capture thread put in the ring", captured
        )
        yield CounterMetricFamily(
            "mexlive_frames_processed", "Frames that went through every stage", processed
        )
        dropped = CounterMetricFamily(
            "mexlive_frames_dropped", "Frames not analysed, by cause", labels=["cause"]
        )
        # The known causes always, then any other (stage_error:<stage>) once it happened.
        for cause in sorted({*DROP_CAUSES, *dropped_by_cause}):
            dropped.add_metric([cause], dropped_by_cause.get(cause, 0))
        yield dropped
        yield CounterMetricFamily("mexlive_reconnects", "Live source reopened", reconnects)


class MetricsExporter:
    """Prometheus metrics over HTTP for one stream.

    Args:
        port: TCP port (0: any free port; ``url`` says which).
        host: address to bind; 127.0.0.1 unless exposing it is asked for.
        rate_window: frames over which the fps gauges are measured.
    """

    def __init__(self, port: int, host: str = "127.0.0.1", rate_window: int = 30) -> None:
        if not 0 <= port <= 65535:
            raise BadInputError(f"--metrics-port must be 0-65535: {port}")
        self.port, self.host = port, host
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)  # CPU seconds and memory of this process
        self._frames = _PipelineCollector()
        self.registry.register(self._frames)
        reg = self.registry
        self.camera_fps = Gauge("mexlive_camera_fps", "Frames/s the source delivers", registry=reg)
        self.processed_fps = Gauge("mexlive_processed_fps", "Frames/s analysed", registry=reg)
        self.face_present = Gauge("mexlive_face_present", "1 while a face is tracked", registry=reg)
        self.stage_latency = Histogram(
            "mexlive_stage_latency_seconds",
            "Per-frame time of each pipeline stage",
            ["stage"],
            buckets=STAGE_BUCKETS_S,
            registry=reg,
        )
        self.event_latency = Histogram(
            "mexlive_event_latency_seconds",
            "Expression offset capture to event emitted (includes the decoder look-ahead)",
            ["kind"],
            buckets=EVENT_BUCKETS_S,
            registry=reg,
        )
        self.events = Counter(
            "mexlive_events", "Expression events", ["kind", "emotion"], registry=reg
        )
        self.status = Counter("mexlive_status_events", "Status lines", ["status"], registry=reg)
        for kind in KINDS:  # a labelled child is served (at zero) once it exists
            self.event_latency.labels(kind)
            for emotion in EMOTIONS:
                self.events.labels(kind, emotion)
        for status in STATUSES:
            self.status.labels(status)
        self.info = Info("mexlive_engine", "Source, backend, precision and model", registry=reg)
        self._rate_window = rate_window
        self.rates = FrameRates(rate_window)
        self._server = None
        self._thread = None

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        """Bind and serve (a daemon thread). A busy port is a MexliveError for the person."""
        from prometheus_client import start_http_server

        try:
            self._server, self._thread = start_http_server(
                self.port, addr=self.host, registry=self.registry
            )
        except OSError as exc:
            raise OutputError(
                f"cannot serve metrics on {self.host}:{self.port}: {exc.strerror or exc}"
            ) from None
        self.port = self._server.server_port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    def attach(self, pipeline: CountedPipeline, labels: dict[str, str]) -> None:
        """Read frame accounting from ``pipeline`` at scrape time; ``labels`` go to the info
        metric (source, stream, backend, precision, model sha256)."""
        self._frames.pipeline = pipeline
        for stage in pipeline.stages:  # this run's stages, each from zero
            self.stage_latency.labels(stage.name)
        self.info.info({k: str(v) for k, v in labels.items()})
        self.rates = FrameRates(self._rate_window)  # a new run: its rates from its own frames

    def idle(self) -> None:
        """The run ended and no other runs yet (the preview between runs): the gauges go back
        to zero; the counters keep the last run's totals until the next ``attach``."""
        for gauge in (self.camera_fps, self.processed_fps, self.face_present):
            gauge.set(0.0)

    def close(self) -> None:
        """EventBus sinks are closed at the end of a run; the server stops later (shutdown)."""

    def shutdown(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    # -- feeding --------------------------------------------------------------------------
    def stage(self) -> Stage:
        return Stage("metrics", self.observe)

    def observe(self, frame: Frame, results: FrameResults) -> None:
        self.rates.add(frame.seq, frame.t_mono_ns)
        self.camera_fps.set(self.rates.capture_fps)
        self.processed_fps.set(self.rates.processed_fps)
        aligned = results.aligned
        if aligned is not None:
            self.face_present.set(1.0 if aligned.ok else 0.0)
        for stage, ms in results.latency_ms.items():
            self.stage_latency.labels(stage).observe(ms / 1e3)

    def write(self, event: StatusEvent | ExpressionEvent) -> None:
        if isinstance(event, ExpressionEvent):
            self.events.labels(event.kind, event.emotion).inc()
            latency_ms = event.latency_ms.get("capture_to_event")
            if latency_ms is not None:
                self.event_latency.labels(event.kind).observe(latency_ms / 1e3)
        elif isinstance(event, StatusEvent):  # blink lines are counted by the bus, not here
            self.status.labels(event.status).inc()
