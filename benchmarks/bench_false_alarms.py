"""False alarms on real faces: spotted events per minute on the unannotated fixture videos.

    python -m benchmarks.bench_false_alarms

The fixture videos (../shared/fixtures/videos or $MEXLIVE_FIXTURES/videos) show talking,
blinks, head motion and macro-expressions, and no annotated micro-expression: every micro
event spotted there is counted as a false alarm (an upper bound: a real, unannotated micro-
expression would count too). Each video runs through the live stages (FaceTracker,
FeatureExtractor, SpottingStage with its baseline) in media time, through the learned spotter
and the training-free classic on the same feature rows. Goal: at most one false micro event
per minute. Which videos the shipped spotter trained on is said per row: only the held-out
ones (``stream/datasets/recipe.py``) measure it; the cross-domain suite
(``benchmarks.bench_spotting --suite cross``) holds the held-out rows as its plain set.
"""

from __future__ import annotations

import argparse
import os
import platform
from pathlib import Path

from stream.capture.sources import AVSource
from stream.contracts import Frame, FrameResults
from stream.datasets.recipe import HELD_OUT_VIDEOS
from stream.live.analysis import FaceAnalysis
from stream.live.spotting import SpottingStage


def fixture_videos() -> list[Path]:
    default = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
    root = Path(os.environ.get("MEXLIVE_FIXTURES") or default)
    return sorted((root / "videos").glob("*.mp4"))


SPOTTERS = ("learned", "classic")


def run(path: Path) -> tuple[float, int, dict[str, dict[str, int]]]:
    """Minutes of video, frames with valid features, events by spotter and kind."""
    analysis = FaceAnalysis(lambda status, detail, seq: None)
    spotters = [SpottingStage(lambda event: None, spotter=name) for name in SPOTTERS]
    stages = [*analysis.stages(), *(spotter.stage() for spotter in spotters)]
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
    kinds = {}
    for name, spotter in zip(SPOTTERS, spotters, strict=True):
        spotter.finish()  # decide what is still open at the end of the file
        kinds[name] = {"micro": 0, "macro": 0}
        for event in spotter.events:
            kinds[name][event.kind] += 1
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
    held_out = set(HELD_OUT_VIDEOS)
    print(
        "| video | held out | seconds | valid frames | learned micro / macro | "
        "classic micro / macro | learned micro / min | classic micro / min |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    totals = {group: {name: 0 for name in SPOTTERS} for group in (True, False)}
    minutes_by = {True: 0.0, False: 0.0}
    for path in videos:
        minutes, valid, kinds = run(path)
        out = path.name in held_out
        minutes_by[out] += minutes
        for name in SPOTTERS:
            totals[out][name] += kinds[name]["micro"]
        cells = [f"{kinds[n]['micro']} / {kinds[n]['macro']}" for n in SPOTTERS]
        rates = [f"{kinds[n]['micro'] / minutes:.1f}" for n in SPOTTERS]
        print(
            f"| {path.name} | {'yes' if out else 'no'} | {minutes * 60:.1f} | {valid} | "
            + " | ".join(cells + rates)
            + " |"
        )
    for out, label in ((True, "held out (all)"), (False, "trained on (all)")):
        m = minutes_by[out]
        rates = [f"{totals[out][n] / m:.1f}" if m else "–" for n in SPOTTERS]
        counts = [f"{totals[out][n]}" for n in SPOTTERS]
        print(f"| {label} | | {m * 60:.1f} | | " + " | ".join(counts + rates) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
