"""mexlive — real-time micro-expression analyzer.

Usage:
    mexlive                                   # synthetic face, window if a display exists
    mexlive --source 0                        # webcam 0
    mexlive --source clip.mp4 --headless --events events.jsonl
    mexlive --source rtsp://camera/stream --record analysed.mp4
    mexlive --source synthetic:7 --fps 30 --duration 20 --headless
    mexlive --source a.mp4 --source b.mp4 --source 0 --headless   # 3 streams, one engine
    mexlive --make-synthetic data/ --count 10 --seconds 30 --fps 30
    mexlive --headless --events - | jq .           # events on stdout, messages on stderr
    mexlive --events logs/events.jsonl --events-max-mb 50 --metrics-port 9108
    mexlive tail logs/events.jsonl --follow       # one coloured line per event
    mexlive --source 0 --calibrate-privacy --privacy-out protected.mp4   # privacy sticker
    mexlive --gradio [--port 7860]            # browser preview on http://127.0.0.1:7860

Sources: a camera index (0), a V4L2 device (/dev/video0), a video file, a URL (rtsp, rtmp,
http(s), udp, tcp, srt) or ``synthetic[:seed]`` (a real photo animated with micro- and
macro-expressions that have exact ground truth).

Keys in the window:
    q / Esc   quit
    h         HUD on / off (rates, stage latency, face box, score trace, events)
    l         landmarks, ROI squares and flow arrows on / off
    p         privacy sticker on / off
    r         record start / stop (the --record path, then mexlive-DATE-TIME.mp4 files)
    c         recalibrate the baseline (keep a neutral face for 2 s)
    space     pause / resume the display (analysis goes on)

Events go to ``--events`` as me-events/v1 JSON Lines, one flushed line per event
(``tail -f events.jsonl | jq``), rotated by size (``--events-max-mb``); ``--metrics-port``
serves Prometheus metrics on 127.0.0.1.

Bad input (missing file, unopenable camera or URL, unsupported
codec, truncated video) prints one message and exits with code 2; lines already written stay.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from stream.app.preview_args import add_preview_arguments
from stream.capture.sources import open_source
from stream.errors import EXIT_BAD_INPUT, MexliveError, report_error
from stream.live.analysis import FaceAnalysis
from stream.live.pipeline import Pipeline, RunSummary
from stream.live.recognition import add_recognizer_arguments, recognizer_from_flags
from stream.live.spotting import SpottingStage
from stream.output.console import ConsoleEvents, truth_table
from stream.output.events import EventBus, JsonlEventLog, StatusEvent
from stream.privacy.live import add_privacy_arguments, privacy_stage_from_args
from stream.ui.controls import LiveControls, Recording
from stream.ui.hud import HudOptions, HudState
from stream.ui.window import LatestFrame, display_available, show_window

CONSENT = (
    "Analyse only people who know and agree. mexlive's events are estimates of facial "
    "movement, not a diagnosis and not a lie detector. No frame or face image is written "
    "unless --record, --privacy-out or --dump-features asks for it."
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mexlive",
        description="Real-time micro-expression analyzer: spots micro- and macro-expressions "
        "live and writes every event to a JSON Lines log. " + CONSENT,
        epilog="Keys in the window: q/Esc quit, h HUD, l landmarks, p privacy, r record, "
        "c recalibrate, space pause. 'mexlive tail LOG [--follow]' pretty-prints a log. "
        "Exit code 2 means bad input.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    src = parser.add_argument_group("input")
    src.add_argument(
        "--source",
        action="append",
        default=None,
        help="0 | /dev/videoN | FILE | URL | synthetic[:seed] (default synthetic); repeat it for "
        "several streams at once, headless, stepped in one batch on one engine",
    )
    src.add_argument(
        "--fps", type=float, default=None, help="frame rate of the synthetic source (default 30)"
    )
    src.add_argument(
        "--no-realtime",
        action="store_true",
        help="render the synthetic source as fast as possible instead of paced",
    )
    src.add_argument("--open-timeout", type=float, default=5.0, help="URL open timeout, s")
    src.add_argument("--read-timeout", type=float, default=5.0, help="URL read timeout, s")
    src.add_argument(
        "--stall-timeout",
        type=float,
        default=2.0,
        help="report source_stalled after a read blocks this long, s",
    )

    run = parser.add_argument_group("run")
    run.add_argument("--headless", action="store_true", help="no window, even with a display")
    run.add_argument("--max-frames", type=int, default=None, help="stop after N frames")
    run.add_argument("--duration", type=float, default=None, help="stop after S seconds")
    run.add_argument("--ring", type=int, default=8, help="frames the capture ring holds")
    run.add_argument("--stream-name", default="cam0", help="the stream field of each event")

    out = parser.add_argument_group("output")
    out.add_argument(
        "--events", default="events.jsonl", help="event log (JSON Lines, appended); '-' for stdout"
    )
    out.add_argument(
        "--record",
        default=None,
        metavar="PATH",
        help="write the analysed frames to a video file (H.264)",
    )
    out.add_argument(
        "--weights",
        default=None,
        metavar="PATH",
        help="spotter weights (default: the shipped engines/weights/spotter.pt, sha256-checked)",
    )
    out.add_argument(
        "--backend",
        choices=("auto", "tensorrt", "torch-cuda", "onnxruntime", "torch"),
        default="auto",
        help="spotter backend; auto = TensorRT > torch on CUDA > ONNX Runtime > torch on the "
        "CPU, whichever runs first (the log says which and why)",
    )
    out.add_argument(
        "--no-spotter",
        action="store_true",
        help="align and extract features only (no expression events)",
    )
    out.add_argument(
        "--dump-features",
        default=None,
        metavar="OUT.npz",
        help="write every frame's feature row (and synthetic ground truth) to .npz",
    )

    add_monitoring_args(parser)
    add_preview_arguments(parser)
    add_recognizer_arguments(parser)

    synth = parser.add_argument_group("synthetic data")
    synth.add_argument(
        "--make-synthetic",
        default=None,
        metavar="DIR",
        help="write a reproducible set of synthetic clips + ground-truth CSVs, then exit",
    )
    synth.add_argument("--count", type=int, default=4, help="clips to write")
    synth.add_argument("--seconds", type=float, default=20.0, help="length of each clip")
    synth.add_argument("--seed", type=int, default=0, help="seed of the set")
    synth.add_argument(
        "--format",
        choices=("mp4", "y4m"),
        default="mp4",
        help="mp4 (H.264) or y4m (raw, usable as a browser fake camera)",
    )
    add_privacy_arguments(parser)
    return parser


def add_monitoring_args(parser: argparse.ArgumentParser) -> None:
    mon = parser.add_argument_group("event log rotation and metrics")
    mon.add_argument(
        "--events-max-mb",
        type=float,
        default=50.0,
        help="rotate the event log past this size (events.jsonl.1, .2, ...)",
    )
    mon.add_argument("--events-keep", type=int, default=5, help="rotated event logs kept")
    mon.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help="serve Prometheus metrics on this port (0: any free port, printed)",
    )
    mon.add_argument("--metrics-host", default="127.0.0.1", help="address the metrics bind to")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["tail"]:
        from stream.output.tail import main as tail_main

        return tail_main(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        if args.make_synthetic:
            return make_synthetic(args)
        sources = args.source or ["synthetic"]
        if args.gradio:
            if len(sources) > 1:
                raise MexliveError("--gradio previews one --source")
            args.source = sources[0]
            from stream.ui.preview import serve

            return serve(args)
        if len(sources) > 1:
            return analyse_many(args, sources)
        args.source = sources[0]
        return analyse(args)
    except MexliveError as exc:  # every error a person can cause; anything else is a bug
        return report_error(exc, "mexlive")


def make_synthetic(args: argparse.Namespace) -> int:
    from stream.synthetic.animator import write_synthetic_set

    for name, value in (("--count", args.count), ("--seconds", args.seconds)):
        if value <= 0:
            raise MexliveError(f"{name} must be positive")
    paths = write_synthetic_set(
        args.make_synthetic,
        count=args.count,
        seconds=args.seconds,
        fps=args.fps or 30.0,
        seed=args.seed,
        fmt=args.format,
    )
    print(f"mexlive: wrote {len(paths)} clips with ground truth to {args.make_synthetic}")
    return 0


def analyse(args: argparse.Namespace) -> int:
    checked = (
        ("--max-frames", args.max_frames),
        ("--duration", args.duration),
        ("--ring", args.ring),
    )
    for name, value in checked:
        if value is not None and value <= 0:
            raise MexliveError(f"{name} must be positive")
    source = open_source(
        args.source,
        fps=args.fps,
        realtime=not args.no_realtime,
        open_timeout_s=args.open_timeout,
        read_timeout_s=args.read_timeout,
    )
    window = not args.headless and display_available()
    human = sys.stderr if args.events == "-" else sys.stdout  # stdout may carry the events
    recording = Recording(args.record, fps=source.fps or 30.0)
    log = _event_log(args)
    console = ConsoleEvents(human)
    hud = HudState()
    metrics = _metrics(args)
    bus = EventBus([log, console, hud] + ([metrics] if metrics else []))

    def emit(status: str, detail: dict, seq: int | None) -> None:
        bus.emit(StatusEvent(status, args.stream_name, seq=seq, detail=detail))

    analysis = FaceAnalysis(emit, keep_rows=args.dump_features is not None)
    stages = analysis.stages()
    spotter = None
    if not args.no_spotter:
        recognizer = recognizer_from_flags(
            args.recognizer_weights,
            args.no_recognizer,
            lambda s: print(s, file=sys.stderr),
            args.recognizer_backend,
        )
        spotter = SpottingStage(
            bus.emit,
            args.stream_name,
            weights=args.weights,
            on_status=emit,
            backend=args.backend,
            recognizer=recognizer,
        )
        print(
            f"mexlive: spotter on {spotter.engine.name} ({spotter.engine.reason})", file=sys.stderr
        )
        stages.append(spotter.stage())
    privacy = privacy_stage_from_args(args, emit, source.fps)
    if privacy is not None:  # after the analysis (of clean frames), before record and window
        stages.append(privacy.stage())
    view = LatestFrame() if window else None
    controls = LiveControls(
        hud,
        HudOptions(privacy="on" if privacy else "off"),
        recording,
        spotter.recalibrate if spotter else None,
        view.put if view else None,
        lambda text: print(f"mexlive: {text}", file=sys.stderr),
        privacy_available=privacy is not None,
    )
    if privacy is not None:
        privacy.wanted = lambda: controls.privacy_wanted  # the window's p key
    stages.append(controls.stage())
    if metrics is not None:
        stages.append(metrics.stage())
    pipeline = Pipeline(
        source,
        bus,
        stages,
        stream_name=args.stream_name,
        ring_capacity=args.ring,
        max_frames=args.max_frames,
        duration_s=args.duration,
        stall_timeout_s=args.stall_timeout,
    )
    if metrics is not None:
        engine = spotter.engine if spotter else None
        metrics.attach(
            pipeline,
            {
                "source": source.name,
                "stream": args.stream_name,
                "backend": engine.name if engine else "none",
                "precision": getattr(engine, "precision", "fp32") if engine else "none",
                "model_sha256": spotter.model_info["sha256"] if spotter else "",
            },
        )
    try:
        pipeline.start()  # opens the source: SourceError here is bad input, before any thread
        _stop_on_signals(pipeline)
        if view is not None:
            keys = __doc__.split("Keys in the window:")[1].split("Events go")[0].rstrip()
            show_window(pipeline, view, controls, keys)
        else:
            while not pipeline.wait(0.2):
                pass
    except KeyboardInterrupt:
        pass
    finally:
        summary = pipeline.stop() if pipeline.started else None
        recording.stop()
        if privacy is not None:
            privacy.close()
        bus.close()
        if metrics is not None:
            metrics.shutdown()
    if summary is not None and args.dump_features:
        _save_features(analysis, source, args.dump_features)
    animator = getattr(source, "animator", None)
    if summary is not None and spotter is not None and animator is not None:
        truth = animator.events_between(0, pipeline.last_seq + 1)
        print("\nground truth of the synthetic face vs what was spotted:", file=human)
        print(truth_table(spotter.events, truth, pipeline.last_seq), file=human)
    return report(summary, args.events)


def analyse_many(args: argparse.Namespace, sources: list[str]) -> int:
    """Several sources, one pipeline each, one batched spotter engine; one event log."""
    from stream.live.multi import build_streams, run_streams

    if args.record or args.dump_features:
        raise MexliveError("--record and --dump-features take one --source")
    log = JsonlEventLog(args.events)
    console = sys.stderr if args.events == "-" else sys.stdout
    bus = EventBus([log, ConsoleEvents(console)])
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    runs = []
    try:
        runs = build_streams(
            sources,
            bus,
            args.stream_name,
            dict(
                fps=args.fps,
                realtime=not args.no_realtime,
                open_timeout_s=args.open_timeout,
                read_timeout_s=args.read_timeout,
            ),
            dict(
                ring_capacity=args.ring,
                max_frames=args.max_frames,
                duration_s=args.duration,
                stall_timeout_s=args.stall_timeout,
            ),
            spotter=not args.no_spotter,
            backend=args.backend,
            weights=args.weights,
            log=lambda line: print(line, file=sys.stderr),
            recognizer=not args.no_recognizer,
            recognizer_weights=args.recognizer_weights,
            recognizer_backend=args.recognizer_backend,
        )
        run_streams(runs, stop.is_set)
    except KeyboardInterrupt:
        pass  # run_streams stopped every pipeline on the way out
    finally:
        bus.close()
    codes = []
    for run in runs:
        print(f"{run.name} ({run.source_spec}): ", end="", file=console)
        codes.append(report(run.summary, args.events))
    return max(codes, default=EXIT_BAD_INPUT)


def _save_features(analysis: FaceAnalysis, source, path: str) -> None:
    animator = getattr(source, "animator", None)
    truth = animator.events_between(0, len(analysis.rows)) if animator is not None else None
    analysis.save_features(path, source.fps, truth)
    valid = sum(row.valid for row in analysis.rows)
    print(f"mexlive: {len(analysis.rows)} feature rows ({valid} valid) written to {path}")


def report(summary: RunSummary | None, events_path: str) -> int:
    if summary is None:
        return EXIT_BAD_INPUT
    print(
        summary.one_line() + (f", log {events_path}" if events_path != "-" else ""),
        file=sys.stderr if events_path == "-" else sys.stdout,
    )
    if summary.error:
        print(f"mexlive: error: {summary.error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0


def _event_log(args: argparse.Namespace) -> JsonlEventLog:
    if args.events_max_mb <= 0:
        raise MexliveError("--events-max-mb must be positive")
    max_bytes = int(args.events_max_mb * 1024 * 1024)
    return JsonlEventLog(args.events, max_bytes=max_bytes, backups=args.events_keep)


def _metrics(args: argparse.Namespace):
    if args.metrics_port is None:
        return None
    from stream.output.metrics import MetricsExporter

    exporter = MetricsExporter(args.metrics_port, host=args.metrics_host)
    exporter.start()
    print(f"mexlive: Prometheus metrics on {exporter.url}", file=sys.stderr)
    return exporter


def _stop_on_signals(pipeline: Pipeline) -> None:
    """SIGTERM ends the run like q does, so the stopped line and the summary are written."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: pipeline.request_stop())


if __name__ == "__main__":
    sys.exit(main())
