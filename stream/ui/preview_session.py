"""The analysis behind the browser preview: one pipeline run at a time, and what the page shows.

``PreviewSession`` builds each run with ``stream.live.builder`` from the same ``LiveConfig`` as
the CLI (alignment, features, spotter with the recognizer's fusion, event log) on a source
(server side: webcam, file, URL, synthetic; or the browser's webcam through ``PushedSource``),
plus the page's privacy sticker and a ``preview`` stage that keeps, per analysed frame, the apex
score and the decoder threshold for the plot and a copy of the newest frame with its analysis,
which the page takes when it has time. So the page may see fewer frames than were analysed
(display frames are dropped), while every frame the source delivers is analysed.

No Gradio here: ``stream/ui/preview.py`` builds the page on top of this.
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from stream.capture.pushed import PushedSource
from stream.contracts import AlignedFace, Frame, FrameResults
from stream.errors import MexliveError
from stream.face.features import roi_block
from stream.live.builder import EmitFn, LiveConfig, LiveParts, LiveRun, build_live
from stream.live.pipeline import Pipeline, RunSummary, Stage
from stream.live.spotting import SpottingStage
from stream.output.events import EventBus, ExpressionEvent, JsonlEventLog
from stream.output.metrics import MetricsExporter
from stream.privacy.live import PrivacyOptions, PrivacyStage, privacy_stage
from stream.ui.overlay import draw_analysis
from stream.ui.preview_panels import EventTable, PreviewStats

BROWSER = "browser"  # the source spec of the browser-webcam mode


@dataclass
class SessionConfig:
    """What a preview session runs (constructor arguments, no globals).

    Attributes:
        live: the builder's config, as the CLI makes it from its flags (spotter, recognizer,
            how a source spec opens, stream name, limits); each run replaces its source, its
            privacy stage (the page's toggle) and its extra stages.
        log_dir: where each run's event log (JSON Lines) is written.
        trace_s: seconds of apex score kept for the plot.
        max_events: rows of the events table.
        extra_stages: more per-frame stages after the preview's own (tests use this).
    """

    live: LiveConfig = field(default_factory=LiveConfig)
    log_dir: Path = field(default_factory=lambda: Path(tempfile.gettempdir()) / "mexlive-preview")
    trace_s: float = 10.0
    max_events: int = 50
    extra_stages: list[Stage] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.log_dir = Path(self.log_dir)


@dataclass
class _Snapshot:
    image: np.ndarray  # (H, W, 3) BGR copy of the analysed frame
    aligned: AlignedFace | None
    roi_flow: np.ndarray | None  # (R-1, 2)
    seq: int
    t_mono_ns: int  # capture time


class PreviewSession:
    """One analysis run at a time for the preview page; every method is thread-safe.

    Args:
        config: what each run builds.
        metrics: a started Prometheus exporter (``--metrics-port``) that follows each run:
            its gauges stay at zero while nothing runs.
    """

    def __init__(
        self, config: SessionConfig | None = None, metrics: MetricsExporter | None = None
    ) -> None:
        self.config = config or SessionConfig()
        self.metrics = metrics
        self.privacy = False  # the page's privacy toggle, read by the sticker stage each frame
        self.log_path: Path | None = None
        self.summary: RunSummary | None = None
        self._lock = threading.Lock()
        self._pipeline: Pipeline | None = None
        self._pushed: PushedSource | None = None
        self._bus: EventBus | None = None
        self._spotter: SpottingStage | None = None
        self._source = None
        self._table = EventTable(self.config.max_events)
        self._mode = ""
        self._t_start = 0.0
        self._display_cond = threading.Condition()
        self._reset_view()

    def _reset_view(self) -> None:
        self._trace: deque[tuple[float, float, float]] = deque()  # (t_s, apex score, threshold)
        self._done_mono: deque[float] = deque()  # monotonic s of each analysed frame
        self._latency_ms: deque[float] = deque(maxlen=256)  # capture -> analysed
        self._display_ms: deque[float] = deque(maxlen=256)  # capture -> handed to the page
        self._snapshot: _Snapshot | None = None
        self._shown_seq = -1
        self.displayed = 0  # frames handed to the page
        self._captured_marks: deque[tuple[float, int]] = deque()

    # -- lifecycle ------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        pipeline = self._pipeline
        return pipeline is not None and not pipeline.wait(0)

    @property
    def ended(self) -> bool:
        """The run ended by itself (end of file, source error) and awaits ``stop``."""
        pipeline = self._pipeline
        return pipeline is not None and pipeline.wait(0)

    @property
    def mode(self) -> str:
        return self._mode

    def warm_up(self, log: Callable[[str], None] | None = None) -> None:
        """Build a run once without starting it: the face models, the Numba kernels, the
        spotter and the recognizer load now (bad weights fail here), so the first Start takes
        a moment instead of seconds; ``log`` gets the builder's lines (which backends)."""
        build_live(
            replace(self.config.live, source=PushedSource(), privacy=None), EventBus([]), log
        )

    def start(self, spec: str) -> str:
        """Start analysing ``spec`` (``"browser"`` for frames pushed by the page; else as
        ``--source``). Stops a run in progress first. Returns a line for the page; raises
        MexliveError for a source that cannot be opened."""
        self.stop()
        with self._lock:
            spec = spec.strip() or "synthetic"
            self._pushed = PushedSource() if spec == BROWSER else None
            cfg = self.config
            cfg.log_dir.mkdir(parents=True, exist_ok=True)
            self.log_path = cfg.log_dir / f"events-{time.strftime('%Y%m%d-%H%M%S')}.jsonl"
            self._table = EventTable(cfg.max_events)
            metrics = [self.metrics] if self.metrics is not None else []
            bus = EventBus([JsonlEventLog(self.log_path), self._table, *metrics])
            live = replace(
                cfg.live,
                source=self._pushed or spec,
                privacy=self._privacy_stage,
                extra_stages=self._page_stages,
            )
            try:
                run = build_live(live, bus)  # a bad spec raises MexliveError here
                if self.metrics is not None:
                    self.metrics.attach(run.pipeline, run.metric_labels())
                self._spotter = run.spotter  # before the first frame reaches _observe
                self._reset_view()
                self._t_start = time.monotonic()
                run.pipeline.start()
            except MexliveError:
                bus.close()
                raise
            self._pipeline, self._bus, self._source = run.pipeline, bus, run.source
            self._mode, self.summary = ("browser" if spec == BROWSER else "server"), None
        return f"analysing {run.source.name} ({_engines(run)}); log {self.log_path}"

    def _privacy_stage(self, emit: EmitFn, fps: float | None) -> PrivacyStage | None:
        """The page's sticker: drawn after the analysis (of the clean frame), before the
        page's copy, so the page shows the protected frame while the toggle is on."""
        stage = privacy_stage(PrivacyOptions(draw=True), emit, fps)
        if stage is not None:
            stage.wanted = lambda: self.privacy
        return stage

    def _page_stages(self, parts: LiveParts) -> list[Stage]:
        metrics = [self.metrics.stage()] if self.metrics is not None else []
        return [Stage("preview", self._observe), *metrics, *self.config.extra_stages]

    def stop(self) -> str:
        """End the run (idempotent): the log gets its ``stopped`` line. Returns a line."""
        with self._lock:
            return self._stop_locked()

    def finish_if_ended(self) -> str | None:
        """Finish a run that ended by itself (end of file, source error): its summary line.
        None when there is nothing to finish, and at once when a ``start`` or ``stop`` holds
        the session: a Stop's worker ends before its ``stop`` returns, and that Stop, not
        this call, reports the run (the page's Stop line must not become "not running")."""
        if not self._lock.acquire(blocking=False):
            return None
        try:
            return self._stop_locked() if self.ended else None
        finally:
            self._lock.release()

    def _stop_locked(self) -> str:
        pipeline, bus = self._pipeline, self._bus
        if pipeline is None:
            return "not running"
        if self._pushed is not None:
            self._pushed.end()
        summary = pipeline.stop()
        bus.close()
        if self.metrics is not None:
            self.metrics.idle()  # the last run's counters stay; its rates drop to zero
        self._pipeline = self._bus = None
        self.summary = summary
        return summary.one_line()

    @property
    def source(self):
        """The source of the current (or last) run, e.g. for a synthetic one's ground truth."""
        return self._source

    def spotted(self) -> list[ExpressionEvent]:
        """Every expression the current (or last) run spotted, oldest first."""
        spotter = self._spotter
        return list(spotter.events) if spotter is not None else []

    # -- browser frames -------------------------------------------------------------------
    def push(self, image_bgr: np.ndarray, t_arrival_s: float | None = None) -> int | None:
        """A frame from the page's webcam; returns its seq (see ``take_display``), or None
        when no browser-mode run takes it."""
        pushed = self._pushed
        if pushed is None or not self.running:
            return None
        return pushed.push(image_bgr, time.monotonic() if t_arrival_s is None else t_arrival_s)

    # -- the preview stage (pipeline worker thread) ---------------------------------------
    def _observe(self, frame: Frame, results: FrameResults) -> None:
        now = time.monotonic()
        spotter = self._spotter
        threshold = spotter.decoder.threshold if spotter is not None else 0.0
        score = results.apex_score
        trace = self._trace
        trace.append((frame.t_s, float("nan") if score is None else score, threshold))
        while trace and frame.t_s - trace[0][0] > self.config.trace_s:
            trace.popleft()
        done = self._done_mono
        done.append(now)
        while now - done[0] > 10.0:
            done.popleft()
        self._latency_ms.append((time.monotonic_ns() - frame.t_mono_ns) / 1e6)
        # The newest frame replaces the last unshown one: the page shows what it has time for
        # (display frames are dropped), the analysis never waits for it. A copy is ~0.1 ms.
        aligned, row = results.aligned, results.features
        snapshot = _Snapshot(
            image=frame.image.copy(),
            aligned=replace(aligned, face=None) if aligned is not None else None,
            roi_flow=roi_block(row.values)[:, :2].copy() if row is not None else None,
            seq=frame.seq,
            t_mono_ns=frame.t_mono_ns,
        )
        with self._display_cond:
            self._snapshot = snapshot
            self._display_cond.notify_all()

    # -- what the page reads --------------------------------------------------------------
    def take_display(
        self, after_seq: int | None = None, timeout_s: float = 0.0
    ) -> tuple[np.ndarray, int, int] | None:
        """The newest analysed frame not yet shown, annotated, as RGB (H, W, 3) with its seq
        and capture time (monotonic ns); None when there is nothing new. With ``after_seq``,
        first wait up to ``timeout_s`` for frame ``after_seq`` to be analysed. The drawing
        happens here, in the page's thread, not in the analysis."""

        def analysed() -> bool:
            return self._snapshot is not None and self._snapshot.seq >= after_seq

        with self._display_cond:
            if after_seq is not None:
                self._display_cond.wait_for(analysed, timeout_s)
            snapshot = self._snapshot
            if snapshot is None or snapshot.seq == self._shown_seq:
                return None
            self._shown_seq = snapshot.seq
            self.displayed += 1
        image = snapshot.image
        draw_analysis(image, snapshot.aligned, snapshot.roi_flow)
        self._display_ms.append((time.monotonic_ns() - snapshot.t_mono_ns) / 1e6)
        return image[..., ::-1], snapshot.seq, snapshot.t_mono_ns

    def events(self) -> tuple[list[list[Any]], int]:
        """Rows of the events table (newest first) and a version that changes with them."""
        return self._table.rows(), self._table.version

    def trace(self) -> np.ndarray:
        """(N, 3) float64: media time s, apex score (NaN without a face), threshold."""
        return np.array(list(self._trace), np.float64).reshape(-1, 3)

    def stats(self, window_s: float = 2.0) -> PreviewStats:
        """Rates over the last ``window_s`` seconds."""
        pipeline = self._pipeline
        stats = PreviewStats(running=self.running, mode=self._mode)
        if pipeline is None:
            return stats
        now = time.monotonic()
        ring = pipeline.ring.stats()
        marks = self._captured_marks
        marks.append((now, ring.captured))
        while len(marks) > 2 and now - marks[1][0] >= window_s:
            marks.popleft()
        span = now - marks[0][0]
        stats.capture_fps = (ring.captured - marks[0][1]) / span if span > 0.2 else 0.0
        done = list(self._done_mono)
        recent = [t for t in done if now - t <= window_s]
        span = min(window_s, now - self._t_start)
        stats.processed_fps = len(recent) / span if len(recent) > 1 and span > 0 else 0.0
        latencies = np.array(self._latency_ms, np.float64)
        if latencies.size:
            stats.latency_ms, stats.latency_p99_ms = np.percentile(latencies, [50, 99]).tolist()
        shown = np.array(self._display_ms, np.float64)
        if shown.size:
            stats.display_ms, stats.display_p99_ms = np.percentile(shown, [50, 99]).tolist()
        stats.source, stats.captured, stats.processed = (
            pipeline.source.name,
            ring.captured,
            pipeline.processed,
        )
        stats.dropped = ring.dropped_total
        stats.expressions = pipeline.bus.expressions
        spotter = self._spotter
        stats.threshold = spotter.decoder.threshold if spotter is not None else 0.0
        return stats


def _engines(run: LiveRun) -> str:
    """Which spotter backend and recognizer a run uses, for the page's start line."""
    spotter = run.spotter
    if spotter is None:
        return "no spotter"
    recognizer = spotter.recognizer
    fused = (
        f", recognizer MPFNet-{recognizer.variant} on {recognizer.backend}"
        if recognizer is not None
        else ", no recognizer"
    )
    if spotter.engine is None:  # --spotter classic: training-free, no model engine
        return f"classic spotter{fused}"
    return f"spotter on {spotter.engine.name}{fused}"
