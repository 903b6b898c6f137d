"""Soak: the full pipeline for M minutes on a playlist of the fixture videos and the synthetic
face, looped; samples memory, file descriptors, threads and latencies every 10 s.

Usage:
    python -m benchmarks.soak --minutes 30 --plot docs/soak.png
    python -m benchmarks.soak --minutes 2 --clips lp_d3.mp4 synthetic:0 --frames-per-clip 120

Each clip ends like an unplugged camera (the playlist source raises a read error and the capture
thread reconnects to the next clip), so every clip boundary also soaks the reconnect path and
resets the analysis; each clip is another person, so the spotter measures the baseline again
and the decoder's running threshold starts afresh. Frames are processed as fast as the CPU
allows, nothing is dropped (a lossless ring). Goals checked at the end (``goals``): RSS growth
after the warm-up <= 5 %, no growth of open fds or threads, p99 per-frame latency drift
<= 10 % (last cycle of the playlist against the first after the warm-up), zero lost events
(every decided event is in the log).

With ``--privacy`` the privacy sticker is drawn on every frame (``stream.privacy.live``), and
with ``--metrics-port`` the Prometheus exporter (``stream.output.metrics``) serves on
127.0.0.1 and is scraped once per window; both come from their own modules and are refused
with a message in a build without them. In code, ``extra_stages`` and ``on_sample`` are the
same plug-in points.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np

from benchmarks.soak_report import Sample, SoakResult, plot, row, table
from engines.decoders import new_decoder
from stream.capture.sources import open_source
from stream.errors import SourceReadError
from stream.live.builder import LiveConfig, RecognizerOptions, RunLimits, build_live
from stream.live.pipeline import Stage
from stream.live.spotting import SpottingStage
from stream.output.events import EventBus, ExpressionEvent, JsonlEventLog


class PlaylistSource:
    """Cycles through source specs forever; each clip's end is a read error (a reconnect).

    A file plays from its start (at most ``frames_per_clip`` frames); the synthetic face plays
    ``synthetic_frames`` frames per visit and goes on where it left off, so every cycle shows
    new expressions.
    """

    live = True

    def __init__(
        self, specs: list[str], frames_per_clip: int | None = None, synthetic_frames: int = 300
    ) -> None:
        self.specs = specs
        self.frames_per_clip = frames_per_clip
        self.synthetic_frames = synthetic_frames
        self.name = "playlist"
        self._resume: dict[str, int] = {}  # synthetic spec -> frames already shown
        self.position = 0  # clips started so far
        self.boundary = process_stats()[1:]  # (fds, threads) at the last clip switch
        self._clip = None
        self._read = 0
        self._limit: int | None = None

    @property
    def fps(self) -> float | None:
        return self._clip.fps if self._clip is not None else 30.0

    @property
    def cycle(self) -> int:
        return max(self.position - 1, 0) // len(self.specs)

    def open(self) -> None:
        self.boundary = process_stats()[1:]  # the previous clip is closed, the next not open
        spec = self.specs[self.position % len(self.specs)]
        clip = open_source(spec, realtime=False)
        clip.open()
        self._limit = self.frames_per_clip
        if hasattr(clip, "skip"):  # the synthetic face: continue the scene
            clip.skip(self._resume.get(spec, 0))
            self._resume[spec] = self._resume.get(spec, 0) + self.synthetic_frames
            self._limit = self.synthetic_frames
        self._clip, self._read = clip, 0
        self.position += 1

    def read(self):
        if self._clip is None:
            raise SourceReadError("playlist: not open")
        frame = None
        if self._limit is None or self._read < self._limit:
            frame = self._clip.read()
        if frame is None:
            raise SourceReadError(f"playlist: end of {self._clip.name}, next clip")
        self._read += 1
        return frame

    def close(self) -> None:
        if self._clip is not None:
            self._clip.close()
            self._clip = None

    def counters(self) -> dict[str, int]:
        return {"clips": self.position}


def process_stats() -> tuple[float, int, int]:
    """(RSS MB, open fds, OS threads) of this process, from /proc."""
    status = Path("/proc/self/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    rss_mb = int(fields["VmRSS"].split()[0]) / 1024
    return rss_mb, len(os.listdir("/proc/self/fd")), int(fields["Threads"])


class Recorder:
    """Per-frame and per-event numbers, swapped out by the sampler every window."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.proc_ms: list[float] = []
        self.cpu_ms: list[float] = []
        self.done_ms: list[float] = []
        self.event_ms: list[float] = []
        self.frames = 0

    def stages(self) -> tuple[Stage, Stage]:
        started_ns = [0, 0]  # (wall, thread CPU) at the frame's first stage: one worker thread

        def start(frame, results):
            started_ns[:] = time.perf_counter_ns(), time.thread_time_ns()

        def done(frame, results):
            now, cpu_now = time.perf_counter_ns(), time.thread_time_ns()
            with self.lock:
                self.proc_ms.append((now - started_ns[0]) / 1e6)
                self.cpu_ms.append((cpu_now - started_ns[1]) / 1e6)
                self.done_ms.append((time.monotonic_ns() - frame.t_mono_ns) / 1e6)
                self.frames += 1

        return Stage("soak_start", start), Stage("soak_done", done)

    def write(self, event) -> None:
        """EventBus sink: the latency of each expression event."""
        if isinstance(event, ExpressionEvent):
            with self.lock:
                self.event_ms.append(event.latency_ms["capture_to_event"])

    def close(self) -> None:
        pass

    def take(self) -> tuple[list[float], list[float], list[float], list[float], int]:
        with self.lock:
            taken = (self.proc_ms, self.cpu_ms, self.done_ms, self.event_ms, self.frames)
            self.proc_ms, self.cpu_ms, self.done_ms, self.event_ms = [], [], [], []
            self.frames = 0
        return taken


def run_soak(
    minutes: float,
    specs: list[str],
    frames_per_clip: int | None = None,
    synthetic_frames: int = 300,
    sample_s: float = 10.0,
    warmup_s: float | None = None,
    log_path: Path | None = None,
    extra_stages: list[Stage] | None = None,
    on_sample: Callable[[Sample], None] | None = None,
    progress: bool = True,
    privacy: bool = False,
    metrics_port: int | None = None,
) -> SoakResult:
    duration_s = minutes * 60
    result = SoakResult(minutes, warmup_s if warmup_s is not None else min(180, duration_s / 4))
    log_path = log_path or Path(tempfile.mkdtemp(prefix="mexlive-soak-")) / "events.jsonl"
    log = JsonlEventLog(log_path)
    recorder = Recorder()
    bus = EventBus([log, recorder])
    first, last = recorder.stages()
    exporter = None
    if metrics_port is not None:
        exporter, scrape = metrics_exporter(metrics_port, bus)
        on_sample = _both(on_sample, scrape)

    def after_spotter(parts) -> list[Stage]:
        extra = [new_person(parts.spotter), *(extra_stages or [])]
        if privacy:
            extra.append(privacy_stage(parts.emit))
        if exporter is not None:
            extra.append(exporter.stage())
        return [*extra, last]

    source = PlaylistSource(specs, frames_per_clip, synthetic_frames)
    config = LiveConfig(
        source=source,
        # Lossless; the next clip is there at once: no reconnect backoff.
        # One stage thread, inline: the per-frame CPU time below reads one thread's clock
        # from the first stage to the last, which two stage threads would split.
        limits=RunLimits(
            duration_s=duration_s,
            ring_policy="block",
            backoff_s=(0.0, 0.0),
            stage_threads=1,
            align="inline",
        ),
        stream_name="soak",
        recognizer=RecognizerOptions(enabled=False),
        first_stages=(first,),
        extra_stages=after_spotter,
    )
    live = build_live(config, bus)
    pipeline, spotter = live.pipeline, live.spotter
    if exporter is not None:
        exporter.attach(pipeline, {"source": "playlist", "stream": "soak"})
    cycle_ms: dict[int, list[float]] = {}
    cycle_cpu_ms: dict[int, list[float]] = {}
    pipeline.start()
    t0 = time.monotonic()
    next_sample = t0 + sample_s
    while not pipeline.wait(max(next_sample - time.monotonic(), 0.0)):
        proc, cpu, done, events, frames = recorder.take()
        cycle_ms.setdefault(source.cycle, []).extend(proc)
        cycle_cpu_ms.setdefault(source.cycle, []).extend(cpu)
        rss_mb = process_stats()[0]
        fds, threads = source.boundary
        sample = Sample(
            t_s=round(time.monotonic() - t0, 1),
            frames=frames,
            fps=round(frames / sample_s, 1),
            rss_mb=round(rss_mb, 1),
            fds=fds,
            threads=threads,
            proc_ms_p50=_pct(proc, 50),
            proc_ms_p99=_pct(proc, 99),
            cpu_ms_p99=_pct(cpu, 99),
            capture_to_done_ms_p99=_pct(done, 99),
            event_latency_ms=_pct(events, 50),
            events=len(events),
            cycle=source.cycle,
        )
        result.samples.append(sample)
        if on_sample is not None:
            on_sample(sample)
        if progress:
            print(row(sample), file=sys.stderr, flush=True)
        next_sample += sample_s
    summary = pipeline.stop()
    log.close()
    if exporter is not None:
        exporter.shutdown()
    finished = sorted(cycle_ms)[:-1]  # the last cycle is cut short by the end of the run
    result.cycle_p99_ms = [_pct(cycle_ms[c], 99) for c in finished]
    result.cycle_cpu_p99_ms = [_pct(cycle_cpu_ms[c], 99) for c in finished]
    result.cycle_ids = finished
    result.events_decided = len(spotter.events)
    result.events_logged = sum('"type":"expression"' in line for line in log_path.open())
    result.frames, result.balanced = summary.processed, summary.balanced
    return result


def new_person(spotter: SpottingStage) -> Stage:
    """Each clip shows another person: after the spotter has closed what the last clip left
    open (the clip switch is a gap), measure this person's baseline again and start the
    decoder's running threshold afresh, as a new live session would."""
    last_segment = [0]

    def on_frame(frame, results):
        if frame.segment != last_segment[0]:
            last_segment[0] = frame.segment
            spotter.recalibrate()
            spotter.decoder = new_decoder(spotter.decoder.config)

    return Stage("soak_new_person", on_frame)


def privacy_stage(emit) -> Stage:
    """The privacy sticker stage with its command-line defaults (``--privacy``)."""
    try:
        from stream.privacy.live import PrivacyOptions
        from stream.privacy.live import privacy_stage as make_privacy_stage
    except ImportError:
        raise SystemExit(
            "soak: --privacy needs stream/privacy/live.py (not in this build)"
        ) from None
    return make_privacy_stage(PrivacyOptions(draw=True), emit, 30.0).stage()


def metrics_exporter(port: int, bus: EventBus):
    """The Prometheus exporter on 127.0.0.1 (``--metrics-port``) and a scrape function."""
    import urllib.request

    try:
        from stream.output.metrics import MetricsExporter
    except ImportError:
        raise SystemExit(
            "soak: --metrics-port needs stream/output/metrics.py (not in this build)"
        ) from None
    exporter = MetricsExporter(port)
    exporter.start()
    bus.sinks.append(exporter)  # it counts events and status lines as an EventBus sink

    def scrape(sample: Sample) -> None:
        with urllib.request.urlopen(exporter.url, timeout=5) as reply:
            assert reply.status == 200 and b"mexlive_" in reply.read()

    return exporter, scrape


def _both(first, second):
    if first is None:
        return second
    return lambda sample: (first(sample), second(sample))


def _pct(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 2) if values else float("nan")


def fixtures_videos() -> Path:
    root = os.environ.get("MEXLIVE_FIXTURES")
    return Path(root or Path(__file__).resolve().parents[2] / "shared" / "fixtures") / "videos"


def default_specs() -> list[str]:
    return [*sorted(str(p) for p in fixtures_videos().glob("*.mp4")), "synthetic:0"]


def resolve_clip(spec: str) -> str:
    """A bare fixture name (``lp_d3.mp4``) → its path; anything else as given."""
    candidate = fixtures_videos() / spec
    return str(candidate) if "/" not in spec and candidate.is_file() else spec


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--sample-s", type=float, default=10.0, help="window length, s")
    parser.add_argument("--warmup-s", type=float, default=None, help="default min(180, 25 %%)")
    parser.add_argument("--frames-per-clip", type=int, default=None, help="cap each file")
    parser.add_argument(
        "--synthetic-frames", type=int, default=300, help="synthetic frames per visit"
    )
    parser.add_argument("--clips", nargs="*", default=None, help="default: fixtures+synthetic")
    parser.add_argument("--plot", type=Path, default=None, help="write a PNG plot here")
    parser.add_argument("--json", type=Path, default=None, help="write samples + goals here")
    parser.add_argument("--every", type=int, default=1, help="print every k-th window")
    parser.add_argument("--privacy", action="store_true", help="draw the privacy sticker")
    parser.add_argument(
        "--metrics-port", type=int, default=None, help="serve and scrape Prometheus metrics"
    )
    args = parser.parse_args(argv)
    if args.minutes <= 0:
        parser.error("--minutes must be positive")
    specs = [resolve_clip(c) for c in args.clips] if args.clips else default_specs()
    print(f"soak: {args.minutes:g} min over {len(specs)} clips", file=sys.stderr)
    result = run_soak(
        args.minutes,
        specs,
        args.frames_per_clip,
        args.synthetic_frames,
        args.sample_s,
        args.warmup_s,
        privacy=args.privacy,
        metrics_port=args.metrics_port,
    )
    print(table(result, args.every))
    if args.plot:
        plot(result, args.plot)
    if args.json:
        body = {**asdict(result), "goals": result.goals()}
        args.json.write_text(json.dumps(body, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
