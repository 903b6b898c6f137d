"""False alarms on real faces: spotted events per minute on the unannotated fixture videos.

    python -m benchmarks.bench_false_alarms

The fixture videos (../shared/fixtures/videos or $MEXLIVE_FIXTURES/videos) show talking,
blinks, head motion and macro-expressions, and no annotated micro-expression: every micro
event spotted there is counted as a false alarm (an upper bound: a real, unannotated micro-
expression would count too). Each video runs through the live stages (FaceTracker,
FeatureExtractor, SpottingStage with its baseline) in media time. Goal (issue 4): at most one
false micro event per minute.
"""

from __future__ import annotations

import argparse
import os
import platform
from pathlib import Path

import numpy as np

from stream.capture.sources import AVSource
from stream.contracts import Frame, FrameResults
from stream.live.analysis import FaceAnalysis
from stream.live.spotting import SpottingStage


def fixture_videos() -> list[Path]:
    default = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
    root = Path(os.environ.get("MEXLIVE_FIXTURES") or default)
    return sorted((root / "videos").glob("*.mp4"))


def run(path: Path) -> tuple[float, int, dict[str, int]]:
    """Minutes of video, frames with valid features, events by kind."""
    analysis = FaceAnalysis(lambda status, detail, seq: None)
    spotter = SpottingStage(lambda event: None)
    stages = [*analysis.stages(), spotter.stage()]
    valid = 0
    last_t = 0.0
    with AVSource(path) as source:
        while (sf := source.read()) is not None:
            frame = Frame(sf.index, 0, sf.pts_s, sf.image)
            results = FrameResults(gap=False)
            for stage in stages:
                stage.fn(frame, results)
            valid += bool(results.features.valid)
            last_t = sf.pts_s or last_t
    kinds = {"micro": 0, "macro": 0}
    for event in spotter.events:
        kinds[event.kind] += 1
    return last_t / 60, valid, kinds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_false_alarms",
        description=__doc__.split("\n\n")[0],
        epilog="Reads the fixture videos from ../shared/fixtures or $MEXLIVE_FIXTURES.",
    )
    parser.parse_args(argv)  # no options: --help says what it measures
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores\n")
    videos = fixture_videos()
    if not videos:
        print("fixture videos not found: set MEXLIVE_FIXTURES")
        return 0
    print("| video | seconds | valid frames | micro events | macro events | micro / min |")
    print("|---|---:|---:|---:|---:|---:|")
    total_min, total_micro = 0.0, 0
    for path in videos:
        minutes, valid, kinds = run(path)
        total_min += minutes
        total_micro += kinds["micro"]
        print(
            f"| {path.name} | {minutes * 60:.1f} | {valid} | {kinds['micro']} | "
            f"{kinds['macro']} | {kinds['micro'] / minutes:.1f} |"
        )
    rate = total_micro / total_min if total_min else np.nan
    print(f"| all | {total_min * 60:.1f} | | {total_micro} | | {rate:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
