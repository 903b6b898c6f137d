"""mexlive's command-line flags, one argparse group per concern; ``RunConfig.from_args``
(stream/app/config.py) turns them into the builder's config. Each default is taken from the
options dataclass it fills, so it is written once."""

from __future__ import annotations

import argparse
import textwrap

from stream.app.preview_args import add_preview_arguments
from stream.live.builder import OpenOptions, RecognizerOptions, RunLimits, SpotterOptions
from stream.live.recognition import RECOGNIZER_BACKENDS
from stream.parsing import Parser
from stream.privacy.live import PrivacyOptions
from stream.privacy.stickers import DESIGNS, STICKER_REGIONS
from stream.ui.controls import keys_manual, keys_summary

__all__ = [
    "COMMANDS",
    "CONSENT",
    "build_parser",
    "keys_manual",
]  # keys_manual: for run_live's manual

CONSENT = (
    "Analyse only people who know and agree. mexlive's events are estimates of facial "
    "movement, not a diagnosis and not a lie detector. No frame or face image is written "
    "unless --record, --privacy-out or --dump-features asks for it."
)
BACKENDS = ("auto", "tensorrt", "torch-cuda", "onnxruntime", "torch")


COMMANDS = """\
commands:
  mexlive [options]              analyse a camera, a file, a URL or the synthetic face live
  mexlive tail LOG [--follow]    print an event log, one coloured line per event
  mexlive inspect VIDEO          why each event fired: a table and a plot, against truth
  mexlive batch INPUT --out DIR  an archive of videos on Ray: a log per video and a summary
  mexlive --make-synthetic DIR   synthetic clips with ground-truth CSVs, to try the others on
  mexlive --gradio               the browser preview
Each command has its own --help, e.g. mexlive inspect --help."""


def build_parser() -> argparse.ArgumentParser:
    description = textwrap.fill(
        "Real-time micro-expression analyzer: spots micro- and macro-expressions live and "
        "writes every event to a JSON Lines log. " + CONSENT,
        width=90,
    )
    parser = Parser(
        prog="mexlive",
        usage="mexlive [options]  |  mexlive {tail,inspect,batch} ... (see commands below)",
        description=f"{description}\n\n{COMMANDS}",
        epilog=f"Keys in the window: {keys_summary()}. Exit code 2 means bad input.",
    )
    add_input_arguments(parser)
    add_model_arguments(parser)
    add_output_arguments(parser)
    add_privacy_arguments(parser)
    add_preview_arguments(parser).add_argument(
        "--headless", action="store_true", help="no window, even with a display"
    )
    add_performance_arguments(parser)
    add_synthetic_arguments(parser)
    return parser


def add_input_arguments(parser: argparse.ArgumentParser) -> None:
    src = parser.add_argument_group("source: what to analyse")
    src.add_argument(
        "--source",
        action="append",
        default=None,
        help="0 | /dev/videoN | FILE | URL | synthetic[:seed] (default: synthetic); repeat it "
        "for several streams at once, headless, on one shared model",
    )
    src.add_argument(
        "--fps", type=float, default=None, help="frame rate of the synthetic source (default: 30)"
    )
    src.add_argument(
        "--no-realtime",
        action="store_true",
        help="render the synthetic source as fast as possible instead of paced",
    )
    src.add_argument("--max-frames", type=int, default=None, help="stop after N frames")
    src.add_argument("--duration", type=float, default=None, help="stop after S seconds")
    opened = OpenOptions()
    src.add_argument(
        "--open-timeout", type=float, default=opened.open_timeout_s, help="URL open timeout, s"
    )
    src.add_argument(
        "--read-timeout", type=float, default=opened.read_timeout_s, help="URL read timeout, s"
    )
    src.add_argument(
        "--stall-timeout",
        type=float,
        default=RunLimits.stall_timeout_s,
        help="report source_stalled after a read blocks this long, s",
    )


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    model = parser.add_argument_group("analysis: spotter and recognizer")
    model.add_argument(
        "--spotter",
        choices=("learned", "classic"),
        default=SpotterOptions.kind,
        help="the trained state-space model, or the training-free classic (region motion "
        "against the person's own running noise, peaks); 'mexlive inspect' shows both",
    )
    model.add_argument(
        "--weights",
        default=None,
        metavar="PATH",
        help="spotter weights (default: the shipped engines/weights/spotter.pt, sha256-checked)",
    )
    model.add_argument(
        "--backend",
        choices=BACKENDS,
        default=SpotterOptions.backend,
        help="where the spotter runs; auto = TensorRT > torch on CUDA > ONNX Runtime > torch "
        "on the CPU, whichever runs first (-v says which and why)",
    )
    model.add_argument(
        "--threshold-scale",
        type=float,
        default=SpotterOptions.threshold_scale,
        metavar="X",
        help="multiply the spotter's threshold: below 1 reports more (and more false events), "
        "above 1 fewer; the default's false-alarm rate is in docs/benchmarks.md",
    )
    model.add_argument(
        "--no-context-gate",
        action="store_true",
        help="report every decided expression: by default a micro-expression on a blink is "
        "the blink (logged as a blink line) and an expression while speaking is reported only "
        "when the brows or eyes moved",
    )
    model.add_argument(
        "--no-spotter",
        action="store_true",
        help="track the face and compute features only (no expression events)",
    )
    model.add_argument(
        "--no-recognizer",
        action="store_true",
        help="emotions from the spotter alone (by default fused with the MPFNet-style "
        "recognizer when its weights are present)",
    )
    model.add_argument(
        "--recognizer-weights",
        default=None,
        metavar="PATH",
        help="recognizer weights (default: engines/weights/recognizer.pt, sha256-checked)",
    )
    model.add_argument(
        "--recognizer-backend",
        choices=RECOGNIZER_BACKENDS,
        default=RecognizerOptions.backend,
        help="onnxruntime runs the exported graph (equal to torch within 1e-5, ~5x faster per "
        "event); torch is the reference",
    )


def add_output_arguments(parser: argparse.ArgumentParser) -> None:
    out = parser.add_argument_group("output: events, recordings, metrics")
    out.add_argument(
        "--events", default="events.jsonl", help="event log (JSON Lines, appended); '-' for stdout"
    )
    out.add_argument(
        "--events-max-mb",
        type=float,
        default=50.0,
        help="rotate the event log past this size (events.jsonl.1, .2, ...)",
    )
    out.add_argument("--events-keep", type=int, default=5, help="rotated event logs kept")
    out.add_argument("--stream-name", default="cam0", help="the stream field of each event")
    out.add_argument(
        "--record",
        default=None,
        metavar="PATH",
        help="write the analysed frames to a video file (H.264)",
    )
    out.add_argument(
        "--dump-features",
        default=None,
        metavar="OUT.npz",
        help="write every frame's feature row (and synthetic ground truth) to .npz",
    )
    out.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help="serve Prometheus metrics on this port (0: any free port, printed; default: off)",
    )
    out.add_argument("--metrics-host", default="127.0.0.1", help="address the metrics bind to")
    out.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="say at start-up which backends were chosen or passed over, and why",
    )


def add_performance_arguments(parser: argparse.ArgumentParser) -> None:
    perf = parser.add_argument_group("performance: where the work runs")
    perf.add_argument(
        "--align",
        choices=("inline", "process"),
        default=RunLimits.align,
        help="where face tracking runs: 'process' puts it in a child process on a second core "
        "while this one computes features and the spotter; 'inline' keeps it in this process "
        "(one core per stream); the events are the same",
    )
    perf.add_argument(
        "--stage-threads",
        type=int,
        choices=(1, 2),
        default=RunLimits.stage_threads,
        help="with --align inline: 1, every stage on one thread; 2, face tracking on one "
        "thread and the rest on another (same events, and no faster in one process: the "
        "face tracker keeps the other thread waiting); --align process always uses 2",
    )
    perf.add_argument(
        "--ring", type=int, default=RunLimits.ring_capacity, help="frames the capture ring holds"
    )
    perf.add_argument(
        "--decode-threads",
        type=int,
        default=OpenOptions.decode_threads,
        metavar="N",
        help="decoder threads for a video file or URL: 0, FFmpeg's frame threads (decoding "
        "overlaps the analysis); 1 where every core already runs its own stream, as in mexlive "
        "batch",
    )


def add_synthetic_arguments(parser: argparse.ArgumentParser) -> None:
    synth = parser.add_argument_group("synthetic data (--make-synthetic)")
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


def add_privacy_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = PrivacyOptions()
    group = parser.add_argument_group("privacy: a sticker that hides micro-expressions")
    group.add_argument(
        "--privacy",
        action="store_true",
        help="draw a privacy sticker on the window, --record and --privacy-out",
    )
    group.add_argument(
        "--privacy-out",
        default=None,
        metavar="PATH|URL",
        help="write only the protected stream (H.264) to a file or URL",
    )
    group.add_argument(
        "--privacy-design",
        choices=DESIGNS,
        default=defaults.design,
        help="the sticker's look; solid hid the most in our privacy evaluation",
    )
    group.add_argument(
        "--privacy-sticker",
        default=None,
        metavar="IMAGE",
        help="sticker image file instead of a built-in design (implies --privacy)",
    )
    group.add_argument(
        "--privacy-region",
        choices=STICKER_REGIONS,
        default=defaults.region,
        help="region before (or without) calibration",
    )
    group.add_argument(
        "--calibrate-privacy",
        action="store_true",
        help="choose the region by causal discovery over the first seconds",
    )
    group.add_argument(
        "--privacy-calibration-s",
        type=float,
        default=defaults.calibration_s,
        help="seconds of face the calibration measures",
    )
    group.add_argument(
        "--privacy-graph",
        default=defaults.graph,
        metavar="PREFIX",
        help="the calibration's graph: PREFIX.json and PREFIX.png",
    )
