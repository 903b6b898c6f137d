"""mexlive — real-time micro-expression analyzer.

Usage:
    mexlive                                   # synthetic face, window if a display exists
    mexlive --source 0                        # webcam 0
    mexlive --source clip.mp4 --headless --events events.jsonl
    mexlive --source rtsp://camera/stream --record analysed.mp4
    mexlive --source synthetic:7 --fps 30 --duration 20 --headless
    mexlive --source a.mp4 --source b.mp4 --source 0 --headless   # 3 streams, one engine
    mexlive --make-synthetic data/ --count 10 --seconds 30 --fps 30

Sources: a camera index (0), a V4L2 device (/dev/video0), a video file, a URL (rtsp, rtmp,
http(s), udp, tcp, srt) or ``synthetic[:seed]`` (a real photo animated with micro- and
macro-expressions that have exact ground truth).

Keys in the window:
    q / Esc   quit
    space     pause / resume the display (analysis goes on)

Events go to ``--events`` as me-events/v1 JSON Lines, one flushed line per event
(``tail -f events.jsonl | jq``). Bad input (missing file, unopenable camera or URL, unsupported
codec, truncated video) prints one message and exits with code 2; lines already written stay.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np

from engines.weights import WeightsError
from stream.analysis import FaceAnalysis
from stream.console import ConsoleEvents, truth_table
from stream.errors import MexliveError
from stream.events import EventBus, JsonlEventLog, StatusEvent
from stream.features import roi_block
from stream.overlay import draw_analysis
from stream.pipeline import Pipeline, RunSummary, Stage
from stream.sources import open_source
from stream.spotting import SpottingStage

EXIT_BAD_INPUT = 2
CONSENT = (
    "Analyse only people who know and agree. mexlive's events are estimates of facial "
    "movement, not a diagnosis and not a lie detector. No frame or face image is written "
    "unless --record, --privacy-out or --dump-features asks for it."
)
WINDOW = "mexlive"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mexlive",
        description="Real-time micro-expression analyzer: spots micro- and macro-expressions "
        "live and writes every event to a JSON Lines log. " + CONSENT,
        epilog="Keys in the window: q/Esc quit, space pause. Exit code 2 means bad input.",
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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.make_synthetic:
            return make_synthetic(args)
        sources = args.source or ["synthetic"]
        if len(sources) > 1:
            return analyse_many(args, sources)
        args.source = sources[0]
        return analyse(args)
    except (MexliveError, WeightsError) as exc:
        print(f"mexlive: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


def make_synthetic(args: argparse.Namespace) -> int:
    from stream.synthetic import write_synthetic_set

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
    for name, value in (("--max-frames", args.max_frames), ("--duration", args.duration)):
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
    recorder = _recorder(args.record, source)
    log = JsonlEventLog(args.events)
    console = ConsoleEvents(sys.stderr if args.events == "-" else sys.stdout)
    bus = EventBus([log, console])

    def emit(status: str, detail: dict, seq: int | None) -> None:
        bus.emit(StatusEvent(status, args.stream_name, seq=seq, detail=detail))

    analysis = FaceAnalysis(emit, keep_rows=args.dump_features is not None)
    stages = analysis.stages()
    spotter = None
    if not args.no_spotter:
        spotter = SpottingStage(
            bus.emit, args.stream_name, weights=args.weights, on_status=emit, backend=args.backend
        )
        print(
            f"mexlive: spotter on {spotter.engine.name} ({spotter.engine.reason})", file=sys.stderr
        )
        stages.append(spotter.stage())
    if recorder is not None:
        stages.append(Stage("record", lambda f, r: recorder.write(f.image, f.pts_s)))
    view = LatestFrame() if window else None
    if view is not None:
        stages.append(Stage("view", lambda f, r: view.put(f.image, r)))
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
    try:
        pipeline.start()  # opens the source: SourceError here is bad input, before any thread
        _stop_on_signals(pipeline)
        if view is not None:
            show_window(pipeline, view)
        else:
            while not pipeline.wait(0.2):
                pass
    except KeyboardInterrupt:
        pass
    finally:
        summary = pipeline.stop() if pipeline.started else None
        if recorder is not None:
            recorder.close()
        bus.close()
    if summary is not None and args.dump_features:
        _save_features(analysis, source, args.dump_features)
    animator = getattr(source, "animator", None)
    if summary is not None and spotter is not None and animator is not None:
        truth = animator.events_between(0, pipeline.last_seq + 1)
        print("\nground truth of the synthetic face vs what was spotted:")
        print(truth_table(spotter.events, truth, pipeline.last_seq))
    return report(summary, args.events)


def analyse_many(args: argparse.Namespace, sources: list[str]) -> int:
    """Several sources, one pipeline each, one batched spotter engine; one event log."""
    from stream.multi import build_streams, run_streams

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
            dict(fps=args.fps, realtime=not args.no_realtime,
                 open_timeout_s=args.open_timeout, read_timeout_s=args.read_timeout),
            dict(ring_capacity=args.ring, max_frames=args.max_frames,
                 duration_s=args.duration, stall_timeout_s=args.stall_timeout),
            spotter=not args.no_spotter,
            backend=args.backend,
            weights=args.weights,
            log=lambda line: print(line, file=sys.stderr),
        )  # fmt: skip
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


def _recorder(path: str | None, source):
    if not path:
        return None
    from stream.recorder import VideoRecorder

    return VideoRecorder(path, fps=source.fps or 30.0)


def _stop_on_signals(pipeline: Pipeline) -> None:
    """SIGTERM ends the run like q does, so the stopped line and the summary are written."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: pipeline.request_stop())


class LatestFrame:
    """The newest analysed frame for the window, copied into a reused buffer."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._image: np.ndarray | None = None
        self._fresh = False

    def put(self, image: np.ndarray, results: dict | None = None) -> None:
        """Copy the frame and draw this frame's analysis (landmarks, ROIs, flow) on the copy."""
        with self._lock:
            if self._image is None or self._image.shape != image.shape:
                self._image = np.empty_like(image)
            np.copyto(self._image, image)
            results = results or {}
            row = results.get("features")
            flow = roi_block(row.values)[:, :2] if row is not None else None  # onset dx, dy
            draw_analysis(self._image, results.get("aligned"), flow)
            self._fresh = True

    def take(self) -> np.ndarray | None:
        with self._lock:
            if not self._fresh:
                return None
            self._fresh = False
            return self._image.copy()


def display_available() -> bool:
    """True if an OpenCV window can open. OpenCV's GUI aborts the process without a display,
    so a throwaway subprocess tries first."""
    if sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
        print("mexlive: no display found; running headless", file=sys.stderr)
        return False
    probe = "import cv2; cv2.namedWindow('probe'); cv2.waitKey(1); cv2.destroyAllWindows()"
    try:
        ok = (
            subprocess.run(
                [sys.executable, "-c", probe], capture_output=True, timeout=10
            ).returncode
            == 0
        )
    except (OSError, subprocess.TimeoutExpired):
        ok = False
    if not ok:
        print("mexlive: the display cannot open a window; running headless", file=sys.stderr)
    return ok


def show_window(pipeline: Pipeline, view: LatestFrame) -> None:
    import cv2

    # opencv-python points Qt at a font folder it does not ship; use the system's instead.
    fonts = Path("/usr/share/fonts/truetype/dejavu")
    if not Path(os.environ.get("QT_QPA_FONTDIR", "/nonexistent")).is_dir() and fonts.is_dir():
        os.environ["QT_QPA_FONTDIR"] = str(fonts)

    print(__doc__.split("Keys in the window:")[1].split("Events go")[0].rstrip(), file=sys.stderr)
    cv2.namedWindow(WINDOW, cv2.WINDOW_AUTOSIZE)  # 1:1 pixels: 1-px motion stays visible
    paused = False
    try:
        while not pipeline.wait(0.0):
            image = view.take()
            if image is not None and not paused:
                cv2.imshow(WINDOW, image)
            key = cv2.waitKey(10) & 0xFF
            if key in (ord("q"), 27):
                break
            if key == ord(" "):
                paused = not paused
    finally:
        cv2.destroyWindow(WINDOW)


if __name__ == "__main__":
    sys.exit(main())
