"""Running what a ``RunConfig`` asks for: one stream (with a window when there is a display),
many streams on one batched engine, the browser preview, or a synthetic data set.

Every pipeline is built by ``stream.live.builder``; what is added here are the sinks (event
log, console, HUD, metrics), the window and its keys, recordings, and the summary lines.
"""

from __future__ import annotations

import signal
import sys
import threading
from dataclasses import replace
from pathlib import Path

from stream.app.config import OutputOptions, RunConfig
from stream.capture.sources import AVSource, Source, WebcamSource
from stream.errors import EXIT_BAD_INPUT, SourceError
from stream.live.builder import LiveParts, LiveRun, build_live, build_many
from stream.live.multi import run_streams
from stream.live.pipeline import Pipeline, RunSummary, Stage
from stream.output.console import ConsoleEvents, truth_table
from stream.output.events import EventBus, JsonlEventLog
from stream.ui.controls import LiveControls, Recording, keys_manual
from stream.ui.hud import HudOptions, HudState
from stream.ui.window import LatestFrame, display_available, show_window


def run(config: RunConfig) -> int:
    """Dispatch on ``config.mode``; returns the exit code. Bad input raises MexliveError (the
    caller prints it: ``run_live.main``)."""
    if config.mode == "make_synthetic":
        return make_synthetic(config)
    if config.mode == "preview":
        from stream.ui.preview import serve  # gradio takes seconds to import

        return serve(config)
    if config.mode == "many":
        return run_many(config)
    return run_one(config)


def say(line: str) -> None:
    print(line, file=sys.stderr)


def make_synthetic(config: RunConfig) -> int:
    from stream.synthetic.animator import write_synthetic_set

    options = config.synthetic_set
    assert options is not None
    paths = write_synthetic_set(
        options.folder,
        count=options.count,
        seconds=options.seconds,
        fps=options.fps,
        seed=options.seed,
        fmt=options.format,
    )
    print(f"mexlive: wrote {len(paths)} clips with ground truth to {options.folder}")
    return 0


def run_one(config: RunConfig) -> int:
    """One source: event log, console, HUD, metrics; the window when there is a display."""
    out = config.output
    source = config.live.make_source()
    check_sources([source])  # before any model loads: bad input is the first line printed
    window = not config.headless and display_available()
    human = sys.stderr if out.events == "-" else sys.stdout  # stdout may carry the events
    recording = Recording(out.record, fps=source.fps or 30.0)
    log = event_log(out)
    hud = HudState()
    metrics = metrics_exporter(out)
    bus = EventBus([log, ConsoleEvents(human), hud] + ([metrics] if metrics else []))
    view = LatestFrame() if window else None
    controls: list[LiveControls] = []

    def window_stages(parts: LiveParts) -> list[Stage]:
        """The HUD / key stage (after the spotter and the sticker), then the metrics."""
        keys = LiveControls(
            hud,
            HudOptions(privacy="on" if parts.privacy else "off"),
            recording,
            parts.spotter.recalibrate if parts.spotter else None,
            view.put if view else None,
            lambda text: say(f"mexlive: {text}"),
            privacy_available=parts.privacy is not None,
        )
        if parts.privacy is not None:
            parts.privacy.wanted = lambda: keys.privacy_wanted  # the window's p key
        controls.append(keys)
        return [keys.stage()] + ([metrics.stage()] if metrics is not None else [])

    detail: list[str] = []
    live = build_live(
        replace(config.live, source=source, extra_stages=window_stages), bus, detail.append
    )
    say_startup([live], detail, config.verbose)
    pipeline = live.pipeline
    if metrics is not None:
        metrics.attach(pipeline, live.metric_labels())
    try:
        pipeline.start()  # opens the source: SourceError here is bad input, before any thread
        _stop_on_signals(pipeline)
        if view is not None:
            show_window(pipeline, view, controls[0], "\n" + keys_manual())
        else:
            while not pipeline.wait(0.2):
                pass
    except KeyboardInterrupt:
        pass
    finally:
        summary = pipeline.stop() if pipeline.started else None
        recording.stop()
        if live.privacy is not None:
            live.privacy.close()
        bus.close()
        if metrics is not None:
            metrics.shutdown()
    if summary is not None and out.dump_features and live.analysis is not None:
        _save_features(live, out.dump_features)
    animator = getattr(source, "animator", None)
    if summary is not None and live.spotter is not None and animator is not None:
        truth = animator.events_between(0, pipeline.last_seq + 1)
        print("\nground truth of the synthetic face vs what was spotted:", file=human)
        fps = animator.config.fps
        print(truth_table(live.spotter.events, truth, pipeline.last_seq, fps), file=human)
    return report(summary, out.events)


def run_many(config: RunConfig) -> int:
    """Several sources, one pipeline each, one batched spotter engine; one event log."""
    out = config.output
    log = JsonlEventLog(out.events)
    console = sys.stderr if out.events == "-" else sys.stdout
    bus = EventBus([log, ConsoleEvents(console)])
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    runs: list[LiveRun] = []
    check_sources([config.live.make_source(spec) for spec in config.sources])
    try:
        detail: list[str] = []
        runs = build_many(config.live, config.sources, bus, detail.append)
        say_startup(runs, detail, config.verbose)
        run_streams(runs, stop.is_set)
    except KeyboardInterrupt:
        pass  # run_streams stopped every pipeline on the way out
    finally:
        bus.close()
    codes = []
    for stream in runs:
        print(f"{stream.name} ({stream.source_spec}): ", end="", file=console)
        codes.append(report(stream.summary, out.events))
    return max(codes, default=EXIT_BAD_INPUT)


def check_sources(sources: list[Source]) -> None:
    """Open and close each file source once, so that a folder, a text file or a missing file
    is reported before the models load (seconds), not after a line about them; a camera whose
    V4L2 device node is missing too. URLs and cameras that exist are opened at the start."""
    for source in sources:
        if isinstance(source, WebcamSource) and sys.platform.startswith("linux"):  # V4L2
            device = source.device
            node = Path(f"/dev/video{device}" if isinstance(device, int) else device)
            if node.parent == Path("/dev") and not node.exists():
                missing = f"camera {device}: no such device ({node} is missing)"
                said = missing if isinstance(device, int) else "no such camera device"
                raise SourceError(f"--source {device}: {said}")
        if isinstance(source, AVSource) and not source.is_url:
            try:
                source.open()
            except SourceError as exc:
                raise SourceError(f"--source {exc}") from None
            source.close()


def startup_line(runs: list[LiveRun]) -> str:
    """One short line: which spotter and recognizer run, on which backend."""
    spotter = runs[0].spotter
    parts = [f"{len(runs)} streams"] if len(runs) > 1 else []
    if spotter is None:
        parts.append("features only (no spotter)")
    elif spotter.engine is None:
        parts.append("classic spotter")
    else:
        parts.append(f"learned spotter on {spotter.engine.name}")
    recognizer = spotter.recognizer if spotter is not None else None
    if recognizer is not None:
        parts.append(f"recognizer MPFNet-{recognizer.variant} on {recognizer.backend}")
    elif spotter is not None:
        parts.append("no recognizer")
    return f"mexlive: {', '.join(parts)}"


def say_startup(runs: list[LiveRun], detail: list[str], verbose: bool) -> None:
    """The start-up line; with ``-v`` the builder's own lines after it (hashes, why each
    backend was chosen or passed over)."""
    if not runs:
        return
    for line in [startup_line(runs)] + (detail if verbose else []):
        say(line)


def report(summary: RunSummary | None, events_path: str) -> int:
    """The one-line summary; the exit code (2 when the run could not start or failed)."""
    if summary is None:
        return EXIT_BAD_INPUT
    print(
        summary.one_line() + (f", log {events_path}" if events_path != "-" else ""),
        file=sys.stderr if events_path == "-" else sys.stdout,
    )
    if summary.warning:
        print(f"mexlive: warning: {summary.warning}", file=sys.stderr)
    if summary.error:
        print(f"mexlive: error: {summary.error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0


def event_log(out: OutputOptions) -> JsonlEventLog:
    max_bytes = int(out.events_max_mb * 1024 * 1024)
    return JsonlEventLog(out.events, max_bytes=max_bytes, backups=out.events_keep)


def metrics_exporter(out: OutputOptions):
    """The Prometheus exporter, started (``--metrics-port``), or None."""
    if out.metrics_port is None:
        return None
    from stream.output.metrics import MetricsExporter

    exporter = MetricsExporter(out.metrics_port, host=out.metrics_host)
    exporter.start()
    say(f"mexlive: Prometheus metrics on {exporter.url}")
    return exporter


def _save_features(live: LiveRun, path: str) -> None:
    analysis, source = live.analysis, live.source
    assert analysis is not None
    animator = getattr(source, "animator", None)
    truth = animator.events_between(0, len(analysis.rows)) if animator is not None else None
    analysis.save_features(path, source.fps, truth)
    valid = sum(row.valid for row in analysis.rows)
    print(f"mexlive: {len(analysis.rows)} feature rows ({valid} valid) written to {path}")


def _stop_on_signals(pipeline: Pipeline) -> None:
    """SIGTERM ends the run like q does, so the stopped line and the summary are written."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: pipeline.request_stop())
