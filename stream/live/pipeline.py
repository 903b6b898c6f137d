"""Pipeline: one capture thread and one or two stage threads per stream, wired to the sinks.

Frames flow ``Source → CaptureThread → FrameRing → worker → stages``. The stages run in order
on every frame with their latency recorded. Sequential (``front_stages=0``): one worker runs
them all. Pipelined (``front_stages=n``): the worker runs the first n stages (alignment) and
hands each frame to a second thread (``stream.live.handoff``) for the rest (features, spotter,
sinks), so two frames are in work at once, in order. At shutdown the frame accounting
``captured == processed + Σ dropped_by_cause`` is checked and written in the ``stopped`` line.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from stream.capture.guards import FreezeDetector, MediaClock
from stream.capture.ring import FrameRing
from stream.capture.sources import Source, frame_shape
from stream.capture.thread import CaptureThread
from stream.contracts import Frame, FrameResults, Stage
from stream.errors import SourceError
from stream.live.handoff import HandOff
from stream.live.summary import LatencyWindow, RunSummary
from stream.output.events import EventBus, StatusEvent

__all__ = ["LatencyWindow", "Pipeline", "RunSummary", "Stage"]


class Pipeline:
    """Runs a source through the stages on a worker thread and reports to an EventBus.

    Args:
        source: a source, not yet opened (``start`` opens it and raises SourceError).
        bus: where status and expression events go.
        stages: per-frame steps, in order.
        stream_name: the ``stream`` field of every event.
        ring_capacity: unread frames the ring holds (live sources drop beyond this).
        max_frames / duration_s: stop after this many frames / seconds (None: no limit).
        drop_report_s: frames_dropped is batched over windows of this length.
        stall_timeout_s: a read blocked longer than this is reported as source_stalled.
        drain_timeout_s: at a stop, how long a file or synthetic source may take to finish
            the frames already queued.
        front_stages: 0 runs every stage on one worker; n > 0 runs the first n on the worker
            and the others on a second thread, ``handoff_capacity`` frames apart at most.
        ring_policy: ``"drop_oldest"`` or ``"block"``; None: drop_oldest for a live source
            whose frames come at the world's pace (a camera, a URL), block for the others
            (files, synthetic, and a live source with ``paced = False``: a fault drill over
            an unpaced scene), which lose nothing however slow the machine is.

    Before the stages, each frame's timestamp is repaired when it repeats or runs backwards
    (``guards.MediaClock``), and a frame identical to the previous one is dropped as
    ``frozen`` (``guards.FreezeDetector``). A new frame size counts as a gap, like a reconnect.
    """

    def __init__(
        self,
        source: Source,
        bus: EventBus,
        stages: list[Stage] | None = None,
        stream_name: str = "cam0",
        ring_capacity: int = 8,
        max_frames: int | None = None,
        duration_s: float | None = None,
        drop_report_s: float = 1.0,
        stall_timeout_s: float = 2.0,
        drain_timeout_s: float = 2.0,
        ring_policy: str | None = None,
        front_stages: int = 0,
        handoff_capacity: int = 4,
    ) -> None:
        self.source = source
        self.bus = bus
        self.stages = list(stages or [])
        self.stream_name = stream_name
        self.max_frames = max_frames
        self.duration_s = duration_s
        self.drop_report_s = drop_report_s
        self.drain_timeout_s = drain_timeout_s
        paced = source.live and getattr(source, "paced", True)
        policy = ring_policy or ("drop_oldest" if paced else "block")
        self.front_count = min(front_stages, len(self.stages))
        self._front = self.stages[: self.front_count] if self.front_count else self.stages
        self.handoff: HandOff | None = None
        leases = 1  # sequential: the frame in work; pipelined: the queued ones and both ends
        if self.front_count:
            self.handoff = HandOff(
                self._run_back, self._completed, self._discarded, handoff_capacity
            )
            leases = handoff_capacity + 2
        self.ring = FrameRing(ring_capacity, policy, frame_shape(source), leases)
        self.capture = CaptureThread(
            source, self.ring, self._on_capture_status, max_frames, stall_timeout_s
        )
        self.latency = {stage.name: LatencyWindow() for stage in self.stages}
        self.frame_latency = LatencyWindow()  # capture → the frame's last stage done
        self.processed = 0
        self.last_seq = -1
        self._last_segment = 0
        self._last_shape: tuple[int, ...] | None = None
        self._pending_gap = False  # a gap seen on a frozen frame, owed to the next real one
        self.seq_gaps = 0
        self.seq_missing = 0  # frames the source itself skipped (jumps in seq)
        self.clock = MediaClock()
        self.freeze = FreezeDetector()
        self._worker = threading.Thread(target=self._work, name="pipeline", daemon=True)
        self._stop_event = threading.Event()
        self._done = threading.Event()
        self._stage_errors: set[str] = set()
        self._t_start = 0.0
        self._t_end = 0.0
        self._reported_drops = 0
        self.summary: RunSummary | None = None
        # Called on the worker once the last frame is processed (the spotter decides what its
        # decoder still holds: an expression cut by the end of a file is still an event).
        self.end_of_stream: list[Callable[[], object]] = []
        self.on_finish: list[Callable[[], object]] = []  # once, when stopped (a child to end)

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        """Open the source (SourceError for a person to read) and start both threads."""
        self.source.open()
        self.clock = MediaClock(1.0 / (self.source.fps or 30.0))
        self._t_start = time.monotonic()
        self.bus.emit(
            self._status(
                "started",
                {
                    "source": self.source.name,
                    "live": self.source.live,
                    "fps": self.source.fps,
                    "policy": self.ring.policy,
                    "stages": [s.name for s in self.stages],
                    "threads": [
                        [s.name for s in self._front],
                        [s.name for s in self.stages[self.front_count :]],
                    ]
                    if self.front_count
                    else [[s.name for s in self.stages]],
                },
            )
        )
        self.capture.start()
        if self.handoff is not None:
            self.handoff.start()
        self._worker.start()

    def request_stop(self) -> None:
        """Ask the worker to end the run (safe from signal handlers); ``stop`` finishes it."""
        self._stop_event.set()

    @property
    def started(self) -> bool:
        return self._worker.ident is not None

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the run ends (source end, limits, stop). True if it has ended."""
        return self._done.wait(timeout)

    def stop(self) -> RunSummary:
        """End the run (idempotent) and return the summary. A file or synthetic source first
        gets up to ``drain_timeout_s`` to finish the frames already queued; what is still
        unread after that (or a live source's backlog) is counted as dropped."""
        if self.started and not self._done.is_set():
            self._stop_event.set()
            self._done.wait(self.drain_timeout_s + 0.5)
        self._stop_event.set()
        self.capture.stop(join_timeout_s=1.0)
        if self.started:
            self._worker.join(2.0)
        return self.finish()

    def run(self) -> RunSummary:
        """start, wait for the end, stop: for headless runs."""
        self.start()
        try:
            while not self.wait(0.2):
                pass
        finally:
            summary = self.stop()
        return summary

    # -- worker ---------------------------------------------------------------------------
    def _work(self) -> None:
        next_drop_report = time.monotonic() + self.drop_report_s
        drain_deadline: float | None = None
        discard = False  # what is handed over but not yet run is dropped, not waited for
        try:
            while True:
                if drain_deadline is None and self._should_end():
                    if self.source.live:
                        discard = True
                        break  # a camera's backlog is stale: count it as dropped, end now
                    # Files and synthetic lose nothing: stop reading, finish what is queued.
                    self.capture.finish_reading()
                    drain_deadline = time.monotonic() + self.drain_timeout_s
                if drain_deadline is not None and time.monotonic() > drain_deadline:
                    discard = True
                    break
                frame = self.ring.get(timeout=0.1)
                if frame is not None:
                    self._process(frame)
                elif drain_deadline is not None:
                    break  # drained (a source blocked in read adds nothing more)
                elif (self.ring.closed or self.ring.stopped) and self.ring.stats().unread == 0:
                    break
                if time.monotonic() >= next_drop_report:
                    self._report_drops()
                    next_drop_report = time.monotonic() + self.drop_report_s
        finally:
            if self.handoff is not None:
                left = None if drain_deadline is None else drain_deadline - time.monotonic()
                self.handoff.finish(discard, None if discard else left)
            self._t_end = time.monotonic()
            try:  # after the last frame: no stage runs beside them
                for hook in self.end_of_stream:
                    hook()
            finally:
                self._done.set()

    def _should_end(self) -> bool:
        if self._stop_event.is_set():
            return True
        in_work = self.handoff.in_flight if self.handoff is not None else 0
        if self.max_frames is not None and self.processed + in_work >= self.max_frames:
            return True
        return self.duration_s is not None and time.monotonic() - self._t_start >= self.duration_s

    def _process(self, frame: Frame) -> None:
        # Frames lost before this one (drops, a reconnect, a new frame size): stages reset.
        new_segment = frame.segment != self._last_segment
        gap = self.last_seq >= 0 and (
            frame.seq != self.last_seq + 1 or new_segment or frame.image.shape != self._last_shape
        )
        self.seq_gaps += gap
        self.seq_missing += max(frame.seq - self.last_seq - 1, 0) if self.last_seq >= 0 else 0
        self.last_seq, self._last_segment = frame.seq, frame.segment
        self._last_shape = frame.image.shape
        if new_segment:
            self.clock.new_timeline()
        frame.pts_s = self.clock.repair(frame.pts_s)
        if self.freeze.repeated(frame.image):
            self._pending_gap |= gap
            self.ring.count_drop("frozen")  # a repeated frame is no new light: never analysed
            self._release(frame)
            return
        gap, self._pending_gap = gap or self._pending_gap, False
        latency_ms: dict[str, float] = {}  # this frame's stages so far, for the HUD and metrics
        results = FrameResults(gap=gap, latency_ms=latency_ms)
        if not self._run_stages(self._front, frame, results):
            self._release(frame)
        elif self.handoff is None:
            self._completed(frame, True)
        else:
            self.handoff.put(frame, results)

    def _run_back(self, frame: Frame, results: FrameResults) -> bool:
        return self._run_stages(self.stages[self.front_count :], frame, results)

    def _run_stages(self, stages: list[Stage], frame: Frame, results: FrameResults) -> bool:
        """Run ``stages`` on the frame; False (the frame counted as dropped) when one fails."""
        latency_ms = results.latency_ms
        for stage in stages:
            t0 = time.perf_counter_ns()
            try:
                stage.fn(frame, results)
            except Exception as exc:  # one bad frame must not end a live session
                self.ring.count_drop(f"stage_error:{stage.name}")
                if stage.name not in self._stage_errors:
                    self._stage_errors.add(stage.name)
                    self.bus.emit(
                        self._status(
                            "source_error",
                            {"message": f"stage {stage.name} failed: {exc!r}"},
                            frame.seq,
                        )
                    )
                return False
            latency_ms[stage.name] = (time.perf_counter_ns() - t0) / 1e6
            self.latency[stage.name].add(latency_ms[stage.name])
        return True

    def _completed(self, frame: Frame, completed: bool) -> None:
        if completed:
            self.processed += 1
            self.frame_latency.add((time.monotonic_ns() - frame.t_mono_ns) / 1e6)
        self._release(frame)

    def _discarded(self, frame: Frame) -> None:
        self.ring.count_drop("unprocessed_at_stop")
        self._release(frame)

    def _release(self, frame: Frame) -> None:
        if self.handoff is not None:  # sequential: the next get releases it
            self.ring.release_frame(frame)

    def _report_drops(self) -> None:
        stats = self.ring.stats()
        if stats.dropped_total > self._reported_drops:
            self.bus.emit(
                self._status(
                    "frames_dropped",
                    {
                        "dropped": stats.dropped_total - self._reported_drops,
                        "dropped_total": stats.dropped_total,
                        "by_cause": stats.dropped,
                        "window_s": self.drop_report_s,
                    },
                    self.last_seq,
                )
            )
            self._reported_drops = stats.dropped_total

    def _on_capture_status(self, status: str, detail: dict[str, Any]) -> None:
        self.bus.emit(self._status(status, detail))

    def _status(self, status: str, detail: dict[str, Any], seq: int | None = None) -> StatusEvent:
        return StatusEvent(status, self.stream_name, seq=seq, detail=detail)

    # -- end of run -----------------------------------------------------------------------
    def finish(self) -> RunSummary:
        if self.summary is not None:
            return self.summary
        self.ring.stop()  # anything still unread is counted as unprocessed_at_stop
        for hook in self.on_finish:
            hook()
        self._report_drops()
        stats = self.ring.stats()
        error = self.capture.error
        summary = RunSummary(
            source=self.source.name,
            captured=stats.captured,
            processed=self.processed,
            dropped=stats.dropped,
            elapsed_s=(self._t_end or time.monotonic()) - self._t_start,
            expressions=self.bus.expressions_of(self.stream_name),
            status_counts=dict(self.bus.counts),
            stage_latency={name: w.percentiles() for name, w in self.latency.items()},
            frame_latency=self.frame_latency.percentiles(),
            error=str(error) if isinstance(error, SourceError) else None,
        )
        counters = self.source.counters()
        summary.warning = getattr(self.source, "ended_early", None)
        if summary.warning is not None:
            self.bus.emit(
                self._status("source_ended_early", {"message": summary.warning}, self.last_seq)
            )
        if self.capture.is_alive():
            summary.error = (
                summary.error or f"{self.source.name}: capture did not stop (blocked read)"
            )
        else:
            self.source.close()
        self.bus.emit(
            self._status(
                "stopped",
                {
                    "captured": summary.captured,
                    "processed": summary.processed,
                    "dropped": summary.dropped,
                    "balanced": summary.balanced,
                    "elapsed_s": round(summary.elapsed_s, 3),
                    "fps": round(summary.fps, 2),
                    "seq_gaps": self.seq_gaps,
                    "seq_missing": self.seq_missing,
                    "timestamps": self.clock.stats.as_dict(),
                    "reconnects": self.capture.reconnects,
                    "source_counters": counters,
                    "stage_latency": summary.stage_latency,
                    "frame_latency": summary.frame_latency,
                    "error": summary.error,
                    "warning": summary.warning,
                },
                self.last_seq if self.last_seq >= 0 else None,
            )
        )
        self.summary = summary
        return summary
