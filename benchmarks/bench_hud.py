"""HUD benchmark: what ``draw_hud`` costs per frame at 640×480.

    python benchmarks/bench_hud.py [--frames 300]

The real pipeline (synthetic source → alignment → features → spotter → HudState) runs first,
so the HUD draws real landmarks, ROIs, a full score trace and real events. Then every kept
frame is drawn once per configuration (each on a fresh copy; the copy is not timed). Prints
median and p99 ms per frame for: everything on, HUD without landmarks, landmarks only.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np

from stream.analysis import FaceAnalysis
from stream.events import EventBus
from stream.hud import HudOptions, HudState, draw_hud
from stream.pipeline import Pipeline, Stage
from stream.sources import open_source
from stream.spotting import SpottingStage


def collect(frames: int) -> tuple[list[tuple[np.ndarray, dict]], HudState]:
    """Run the pipeline and keep each frame with its results."""
    hud = HudState()
    bus = EventBus([hud])
    kept: list[tuple[np.ndarray, dict]] = []
    analysis = FaceAnalysis(lambda *a: None)
    spotter = SpottingStage(bus.emit, backend="torch")
    keep = Stage("keep", lambda f, r: kept.append((f.image.copy(), dict(r))))
    stages = [*analysis.stages(), spotter.stage(), Stage("hud", hud.observe), keep]
    source = open_source("synthetic:3", realtime=False)
    Pipeline(source, bus, stages, max_frames=frames).run()
    return kept, hud


def time_draws(kept, hud: HudState, options: HudOptions) -> np.ndarray:
    ms = np.empty(len(kept))
    for i, (image, results) in enumerate(kept):
        canvas = image.copy()
        t0 = time.perf_counter_ns()
        draw_hud(canvas, results, hud, options)
        ms[i] = (time.perf_counter_ns() - t0) / 1e6
    return ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300)
    args = parser.parse_args()
    kept, hud = collect(args.frames)
    print(f"# {platform.processor() or platform.machine()}, {len(kept)} frames 640x480")
    print("| configuration | median ms | p99 ms |")
    print("|---|---:|---:|")
    configs = {
        "HUD + landmarks/ROIs + REC": HudOptions(recording=True),
        "HUD only (l off)": HudOptions(landmarks=False),
        "landmarks/ROIs only (h off)": HudOptions(hud=False, keys=False),
    }
    for name, options in configs.items():
        time_draws(kept[:20], hud, options)  # warm caches
        ms = time_draws(kept, hud, options)
        print(f"| {name} | {np.median(ms):.2f} | {np.percentile(ms, 99):.2f} |")


if __name__ == "__main__":
    main()
