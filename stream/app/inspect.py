"""``mexlive inspect VIDEO [--truth CSV] [--plot out.png] [--spotter learned,classic]``: why an
event fired.

Decodes the video, aligns and featurizes every frame as the live pipeline does, and runs each
spotter through the live spotting stage (``stream.live.spotting.SpottingStage``) frame by
frame: the same running threshold, look-ahead and baseline as a live run, so what it shows is
what ``mexlive`` would have done (``stream/app/inspection.py``). It prints a table of the
events per spotter (frames, kind, emotion, score, and the truth row each matches at IoU ≥ 0.5,
MEGC, or "kind mismatch" when it overlaps a truth row of the other kind that well) and draws
one PNG (``stream/app/inspect_plot.py``): per spotter the apex score, the threshold and why it
moves, the truth intervals and the spotted events; under them the per-region motion as a heat
map.

Usage:
    mexlive inspect clip.mp4 --truth clip.csv --plot clip.png
    python -m stream.app.inspect clip.mp4 --plot clip.png --spotter classic

Exit code 2, one line: a missing or undecodable video, a video with no face, a truth CSV with
no usable row, an output folder that is not there. A bad truth row is only warned about (by
line) and the rest are used; weights that do not fit leave their spotter out with a warning
while another one runs.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path

from stream.app.inspection import (
    SpotterTrace,
    emotion_label,
    featurize,
    kind_mismatches,
    make_stage,
    match_truth,
    run_spotter,
)
from stream.errors import BadInputError, DataError, MexliveError, report_error
from stream.parsing import Parser
from stream.synthetic.truth import TruthEvent, read_truth_csv

PROG = "mexlive inspect"
SPOTTERS = ("learned", "classic")


def format_table(traces: Sequence[SpotterTrace], truth: Sequence[TruthEvent] | None) -> str:
    """One block per spotter: a line per event, then how many truth rows it found."""
    lines = []
    for trace in traces:
        lines.append(f"{trace.name}: {len(trace.events)} event(s)")
        lines.append("  onset  apex offset  kind   emotion   score  truth (IoU >= 0.5)")
        mismatches = trace.mismatches or [None] * len(trace.events)
        for event, match, other in zip(trace.events, trace.matches, mismatches, strict=True):
            if truth is None:
                found = "-"
            elif match is not None:
                row = truth[match]
                found = f"{row.onset}-{row.offset} {row.kind} {row.emotion}"
            elif other is not None:  # found, but called the wrong kind
                row = truth[other]
                found = f"kind mismatch: truth {row.onset}-{row.offset} {row.kind} {row.emotion}"
            else:
                found = "no match"
            lines.append(
                f"  {event.onset_frame:5d} {event.apex_frame:5d} {event.offset_frame:6d}  "
                f"{event.kind:5s}  {emotion_label(event):8s}  {event.confidence:5.2f}  {found}"
            )
        if truth is not None:
            targets = [t for t in truth if t.kind != "blink"]
            found_n = sum(m is not None for m in trace.matches)
            lines.append(f"  matched {found_n} of {len(targets)} truth row(s)")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog=PROG,
        description=textwrap.fill(
            "Why did an event fire? Analyse a video as the live pipeline does, run each "
            "spotter as a live run would, print its events (matched against the truth at "
            "IoU >= 0.5) and plot score, threshold, truth and per-region motion to one PNG.",
            width=90,
        ),
        epilog="Exit code 2 means bad input.",
    )
    parser.add_argument("video", type=Path, help="a video file with a face")
    parser.add_argument(
        "--truth", type=Path, help="truth CSV, e.g. the one beside a clip of --make-synthetic"
    )
    parser.add_argument("--plot", type=Path, help="write the figure to this PNG (default: none)")
    parser.add_argument(
        "--spotter",
        default="learned,classic",
        help="comma-separated spotters to run: learned, classic",
    )
    parser.add_argument(
        "--weights",
        default=None,
        help="learned spotter .pt (default: the shipped engines/weights/spotter.pt)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def _spotters(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in SPOTTERS]
    if unknown or not names:
        raise BadInputError(f"--spotter takes {', '.join(SPOTTERS)}; got {text!r}")
    return list(dict.fromkeys(names))  # in the order given, each once


def _warn(message: str) -> None:
    print(f"{PROG}: warning: {message}", file=sys.stderr)


def check_video(path: Path) -> None:
    """Open and close ``path`` once: a folder, a missing file or one FFmpeg cannot read is
    bad input, said before the models load."""
    from stream.synthetic.decode import VideoReader

    if path.is_dir():
        raise DataError(f"{path}: is a folder; inspect takes one video file")
    with VideoReader(path):
        pass


def inspect(args: argparse.Namespace) -> int:
    """The command after parsing; MexliveError for anything a person can fix."""
    spotters = _spotters(args.spotter)
    if args.plot is not None and not args.plot.parent.is_dir():
        raise BadInputError(f"--plot {args.plot}: folder {args.plot.parent} does not exist")
    truth = read_truth_csv(args.truth, warn=_warn) if args.truth is not None else None
    check_video(args.video)  # before any model loads
    stages, failure = [], None
    for name in spotters:
        try:
            stages.append(make_stage(name, args.weights))
        except MexliveError as exc:  # weights that do not fit: the other spotter still runs
            _warn(f"{name} spotter left out: {exc}")
            failure = exc
    if not stages:
        raise failure or DataError("no spotter to run")
    features = featurize(args.video, progress=not args.no_progress, warn=_warn)
    traces = [run_spotter(features, stage) for stage in stages]
    for trace in traces:
        no_truth = [None] * len(trace.events)
        trace.matches = match_truth(trace.events, truth) if truth is not None else no_truth
        if truth is not None:
            trace.mismatches = kind_mismatches(trace.events, truth, trace.matches)
    print(
        f"{args.video}: {features.length} frames at {features.fps:g} fps, "
        f"face in {features.valid.mean():.0%}"
    )
    print(format_table(traces, truth))
    if args.plot is not None:
        from stream.app.inspect_plot import draw

        draw(args.plot, features, traces, truth)
        print(f"wrote {args.plot}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return inspect(args)
    except MexliveError as exc:
        return report_error(exc, PROG)


if __name__ == "__main__":
    sys.exit(main())
