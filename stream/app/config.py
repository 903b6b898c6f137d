"""``RunConfig``: the parsed flags turned, once, into what the runners and the builder take.

``RunConfig.from_args(args)`` checks what the flags alone can tell (positive limits, one
source where only one makes sense) and raises MexliveError with the flag's name; what needs a
resource (a source that does not open, weights that do not load, a sticker file) fails when
the run builds it.
"""

from __future__ import annotations

import argparse
import functools
from dataclasses import dataclass, field
from pathlib import Path

from stream.errors import MexliveError
from stream.live.builder import (
    LiveConfig,
    OpenOptions,
    RecognizerOptions,
    RunLimits,
    SpotterOptions,
)
from stream.privacy.live import PrivacyOptions, privacy_stage


@dataclass(frozen=True)
class OutputOptions:
    """Where a run's results go (besides the window)."""

    events: str = "events.jsonl"  # the event log; "-" for stdout
    events_max_mb: float = 50.0  # rotate past this size
    events_keep: int = 5  # rotated logs kept
    record: str | None = None  # the annotated frames, H.264
    dump_features: str | None = None  # every frame's feature row, .npz
    metrics_port: int | None = None  # Prometheus metrics (0: any free port)
    metrics_host: str = "127.0.0.1"


@dataclass(frozen=True)
class SyntheticSetOptions:
    """``--make-synthetic DIR``: a reproducible set of clips with ground truth."""

    folder: str
    count: int = 4
    seconds: float = 20.0
    fps: float = 30.0
    seed: int = 0
    format: str = "mp4"


@dataclass(frozen=True)
class PreviewOptions:
    """``--gradio``: how the browser preview page is served."""

    port: int | None = None  # None: 7860 or the next free one
    host: str = "127.0.0.1"
    share: bool = False
    auth: str | None = None  # USER:PASS
    stream_every_s: float = 0.1  # browser webcam: the page posts a frame every S seconds


@dataclass(frozen=True)
class RunConfig:
    """One invocation of mexlive.

    Attributes:
        mode: "one" (one stream, maybe a window), "many" (several --source, headless, one
            batched engine), "preview" (--gradio) or "make_synthetic".
        sources: the --source specs (default: synthetic).
        live: the builder's config; its ``source`` is ``sources[0]``.
        output, headless: sinks and the window.
        privacy: the privacy options (also inside ``live.privacy`` as its factory).
        preview / synthetic_set: the options of those modes (None in the others).
        verbose: print the backend detail at start-up (hashes, backends passed over).
    """

    mode: str
    sources: tuple[str, ...]
    live: LiveConfig
    output: OutputOptions
    headless: bool = False
    privacy: PrivacyOptions = field(default_factory=PrivacyOptions)
    preview: PreviewOptions | None = None
    synthetic_set: SyntheticSetOptions | None = None
    verbose: bool = False  # -v: the builder's start-up detail instead of one short line

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> RunConfig:
        """The flags of ``stream.app.flags.build_parser`` as one config; MexliveError for a
        value the flags alone show to be wrong."""
        sources = tuple(args.source or ["synthetic"])
        mode = _mode(args, sources)
        synthetic_set = None
        if mode == "make_synthetic":
            for name, value in (("--count", args.count), ("--seconds", args.seconds)):
                if value <= 0:
                    raise MexliveError(f"{name} must be positive")
            synthetic_set = SyntheticSetOptions(
                folder=args.make_synthetic,
                count=args.count,
                seconds=args.seconds,
                fps=args.fps or 30.0,
                seed=args.seed,
                format=args.format,
            )
        if mode in ("one", "many"):
            _check_limits(args)
        privacy = _privacy(args)
        return cls(
            mode=mode,
            sources=sources,
            live=_live(args, sources[0], privacy),
            output=OutputOptions(
                events=args.events,
                events_max_mb=args.events_max_mb,
                events_keep=args.events_keep,
                record=args.record,
                dump_features=args.dump_features,
                metrics_port=args.metrics_port,
                metrics_host=args.metrics_host,
            ),
            headless=args.headless,
            privacy=privacy,
            preview=_preview(args) if mode == "preview" else None,
            synthetic_set=synthetic_set,
            verbose=getattr(args, "verbose", False),
        )


def _check_limits(args: argparse.Namespace) -> None:
    checked = (
        ("--max-frames", args.max_frames),
        ("--duration", args.duration),
        ("--ring", args.ring),
        ("--stall-timeout", args.stall_timeout),
        ("--open-timeout", args.open_timeout),
        ("--read-timeout", args.read_timeout),
        ("--threshold-scale", args.threshold_scale),
    )
    for name, value in checked:
        if value is not None and value <= 0:
            raise MexliveError(f"{name} must be positive")
    if args.events_max_mb <= 0:
        raise MexliveError("--events-max-mb must be positive")
    if not 0 <= args.decode_threads <= 64:
        raise MexliveError(f"--decode-threads {args.decode_threads} is out of range (0-64)")
    # files the run will load: said now, not after the other models have loaded
    named = (
        ("--weights", args.weights),
        ("--recognizer-weights", args.recognizer_weights),
        ("--privacy-sticker", args.privacy_sticker),
    )
    for name, path in named:
        if path is not None and not Path(path).is_file():
            what = "is a folder, not a file" if Path(path).is_dir() else "no such file"
            raise MexliveError(f"{name} {path}: {what}")


def _mode(args: argparse.Namespace, sources: tuple[str, ...]) -> str:
    if args.make_synthetic:
        return "make_synthetic"
    if args.gradio:
        if len(sources) > 1:
            raise MexliveError("--gradio previews one --source")
        return "preview"
    if len(sources) > 1:
        if args.record or args.dump_features:
            raise MexliveError("--record and --dump-features take one --source")
        return "many"
    return "one"


def _live(args: argparse.Namespace, source: str, privacy: PrivacyOptions) -> LiveConfig:
    return LiveConfig(
        source=source,
        open=OpenOptions(
            fps=args.fps,
            realtime=not args.no_realtime,
            open_timeout_s=args.open_timeout,
            read_timeout_s=args.read_timeout,
            decode_threads=args.decode_threads,
        ),
        limits=RunLimits(
            ring_capacity=args.ring,
            max_frames=args.max_frames,
            duration_s=args.duration,
            stall_timeout_s=args.stall_timeout,
            stage_threads=args.stage_threads,
            align=args.align,
        ),
        stream_name=args.stream_name,
        spotter=SpotterOptions(
            enabled=not args.no_spotter,
            weights=args.weights,
            backend=args.backend,
            kind=args.spotter,
            context_gate=not args.no_context_gate,
            threshold_scale=args.threshold_scale,
        ),
        recognizer=RecognizerOptions(
            enabled=not args.no_recognizer,
            weights=args.recognizer_weights,
            backend=args.recognizer_backend,
        ),
        keep_rows=args.dump_features is not None,
        privacy=functools.partial(privacy_stage, privacy) if privacy.wanted else None,
    )


def _privacy(args: argparse.Namespace) -> PrivacyOptions:
    return PrivacyOptions(
        draw=args.privacy,
        out=args.privacy_out,
        design=args.privacy_design,
        sticker=args.privacy_sticker,
        region=args.privacy_region,
        calibrate=args.calibrate_privacy,
        calibration_s=args.privacy_calibration_s,
        graph=args.privacy_graph,
    )


def _preview(args: argparse.Namespace) -> PreviewOptions:
    return PreviewOptions(
        port=args.port,
        host=args.host,
        share=args.share,
        auth=args.auth,
        stream_every_s=args.stream_every,
    )
