"""HUD benchmark: what ``draw_hud`` costs per frame at 640×480.

    python -m benchmarks.bench_hud [--frames 300]

The real pipeline (synthetic source → alignment → features → spotter → HudState) runs first,
so the HUD draws real landmarks, ROIs, a full score trace and real events. Then every kept
frame is drawn once per configuration, interleaved (each on a fresh copy; the copy is not
timed). Prints median and p99 ms per frame, thread CPU time and wall time, for: everything on,
HUD without landmarks, landmarks only.
"""

from __future__ import annotations

import argparse
import platform
import time
from dataclasses import replace

import numpy as np

from stream.contracts import FrameResults
from stream.live.builder import (
    LiveConfig,
    OpenOptions,
    RecognizerOptions,
    RunLimits,
    SpotterOptions,
    build_live,
)
from stream.live.pipeline import Stage
from stream.output.events import EventBus
from stream.ui.hud import HudOptions, HudState, draw_hud


def collect(frames: int) -> tuple[list[tuple[np.ndarray, FrameResults]], HudState]:
    """Run the pipeline and keep each frame with its results."""
    hud = HudState()
    bus = EventBus([hud])
    kept: list[tuple[np.ndarray, FrameResults]] = []
    keep = Stage("keep", lambda f, r: kept.append((f.image.copy(), replace(r))))
    config = LiveConfig(
        source="synthetic:3",
        open=OpenOptions(realtime=False),
        limits=RunLimits(max_frames=frames),
        spotter=SpotterOptions(backend="torch"),
        recognizer=RecognizerOptions(enabled=False),
        extra_stages=(Stage("hud", hud.observe), keep),
    )
    build_live(config, bus).pipeline.run()
    return kept, hud


def time_draws(kept, hud: HudState, configs: dict[str, HudOptions]) -> dict[str, np.ndarray]:
    """(N, 2) wall and thread-CPU ms per draw for each configuration, interleaved frame by frame
    (rotating the order) so load changes on a shared machine hit every configuration alike.
    CPU time is the drawing's own cost; wall time adds whatever preempted it."""
    names = list(configs)
    ms = {name: np.empty((len(kept), 2)) for name in names}
    for i, (image, results) in enumerate(kept):
        for k in range(len(names)):
            name = names[(i + k) % len(names)]
            canvas = image.copy()
            wall0, cpu0 = time.perf_counter_ns(), time.thread_time_ns()
            draw_hud(canvas, results, hud, configs[name])
            ms[name][i] = time.perf_counter_ns() - wall0, time.thread_time_ns() - cpu0
    return {name: values / 1e6 for name, values in ms.items()}


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_hud", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--frames", type=int, default=300)
    args = parser.parse_args()
    kept, hud = collect(args.frames)
    print(f"# {platform.processor() or platform.machine()}, {len(kept)} frames 640x480")
    print("| configuration | CPU median ms | CPU p99 ms | wall median ms | wall p99 ms |")
    print("|---|---:|---:|---:|---:|")
    configs = {
        "HUD + landmarks/ROIs + REC": HudOptions(recording=True),
        "HUD only (l off)": HudOptions(landmarks=False),
        "landmarks/ROIs only (h off)": HudOptions(hud=False, keys=False),
    }
    time_draws(kept[:20], hud, configs)  # warm caches
    for name, ms in time_draws(kept, hud, configs).items():
        (wall50, cpu50), (wall99, cpu99) = np.percentile(ms, [50, 99], axis=0)
        print(f"| {name} | {cpu50:.2f} | {cpu99:.2f} | {wall50:.2f} | {wall99:.2f} |")


if __name__ == "__main__":
    main()
