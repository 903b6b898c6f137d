"""Capture benchmark: what the capture thread + ring cost on top of decoding, and how fast the
synthetic source renders.

    python -m benchmarks.bench_capture [--repeats 5] [--frames 300]

Table 1, per fixture video (../shared/fixtures or $MEXLIVE_FIXTURES), each run interleaved so
drift hits all columns alike:
  pyav     plain ``container.decode`` + ``to_ndarray("bgr24")`` in one thread
  source   mexlive's AVSource.read() loop in one thread
  ring     the full capture path: CaptureThread → FrameRing → pipeline worker (no stages)
Timed from the first to the last frame (opening excluded). The ring's cost is the extra
process CPU time per frame of the ring path over the source loop, and the throughput loss;
both are medians of ratios from paired runs. Medians over the repeats, spread (min–max).

Table 2: synthetic render at 640×480: median and p99 ms per frame, and frames/s.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np

from stream.capture.sources import AVSource
from stream.live.builder import bare_pipeline
from stream.live.pipeline import Stage
from stream.output.events import EventBus


def fixtures_videos() -> list[Path]:
    root = (
        os.environ.get("MEXLIVE_FIXTURES")
        or Path(__file__).resolve().parents[2] / "shared" / "fixtures"
    )
    videos = Path(root) / "videos"
    return sorted(videos.glob("*.mp4")) if videos.is_dir() else []


class Clock:
    """Wall and process-CPU time between the first and the last frame (startup excluded)."""

    def __init__(self) -> None:
        self.n = 0
        self.wall0 = self.cpu0 = self.wall = self.cpu = 0.0

    def tick(self) -> None:
        if self.n == 0:
            self.wall0, self.cpu0 = time.perf_counter(), time.process_time()
        self.n += 1
        self.wall, self.cpu = time.perf_counter() - self.wall0, time.process_time() - self.cpu0

    @property
    def fps(self) -> float:
        return (self.n - 1) / self.wall

    @property
    def cpu_ms(self) -> float:
        return self.cpu / (self.n - 1) * 1e3


def run_pyav(path: Path) -> Clock:
    import av

    clock = Clock()
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            frame.to_ndarray(format="bgr24")
            clock.tick()
    return clock


def run_source(path: Path) -> Clock:
    clock = Clock()
    with AVSource(path) as source:
        while source.read() is not None:
            clock.tick()
    return clock


def run_ring(path: Path) -> Clock:
    clock = Clock()
    stage = Stage("clock", lambda frame, results: clock.tick())
    summary = bare_pipeline(AVSource(path), EventBus(), [stage], ring_capacity=8).run()
    assert summary.balanced and summary.dropped_total == 0
    return clock


def spread(values: list[float], fmt: str = "{:.0f}") -> str:
    low, mid, high = (fmt.format(v) for v in (min(values), statistics.median(values), max(values)))
    return f"{mid} ({low}–{high})"


def bench_videos(repeats: int) -> None:
    videos = fixtures_videos()
    if not videos:
        print("fixture videos not found: set MEXLIVE_FIXTURES; skipping table 1\n")
        return
    print(
        "| video | frames | pyav fps | source fps | capture+ring fps | source CPU ms/frame "
        "| capture+ring CPU ms/frame | ring CPU cost | ring throughput cost |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for path in videos:
        runs: dict[str, list[Clock]] = {"pyav": [], "source": [], "ring": []}
        for _ in range(repeats):
            runs["pyav"].append(run_pyav(path))
            runs["source"].append(run_source(path))
            runs["ring"].append(run_ring(path))
        pairs = list(zip(runs["source"], runs["ring"], strict=True))
        # Ratios from paired runs (the same repeat), then their median.
        cpu_cost = [(r.cpu_ms / s.cpu_ms - 1) * 100 for s, r in pairs]
        fps_cost = [(s.fps / r.fps - 1) * 100 for s, r in pairs]
        fps = {k: [c.fps for c in v] for k, v in runs.items()}
        cpu = {k: [c.cpu_ms for c in v] for k, v in runs.items()}
        print(
            f"| {path.name} | {runs['ring'][0].n} | {spread(fps['pyav'])} "
            f"| {spread(fps['source'])} "
            f"| {spread(fps['ring'])} | {spread(cpu['source'], '{:.2f}')} "
            f"| {spread(cpu['ring'], '{:.2f}')} | {statistics.median(cpu_cost):+.1f} % "
            f"| {statistics.median(fps_cost):+.1f} % |"
        )
    print()


def bench_handoff(frames: int = 20000, repeats: int = 5) -> None:
    """The ring alone: a producer thread hands pre-made 512×480 frames to a consumer thread."""
    import threading

    from stream.capture.ring import FrameRing

    image = np.zeros((480, 512, 3), np.uint8)
    print("| ring handoff alone (512×480) | µs/frame wall | µs/frame CPU |")
    print("|---|---:|---:|")
    for owned in (True, False):
        wall, cpu = [], []
        for _ in range(repeats):
            ring = FrameRing(8, "block", image.shape)

            def produce(ring=ring, owned=owned):
                for seq in range(frames):
                    ring.put(image, seq, None, owned=owned)
                ring.close()

            producer = threading.Thread(target=produce)
            t0, c0 = time.perf_counter(), time.process_time()
            producer.start()
            while ring.get(1.0) is not None:
                pass
            producer.join()
            wall.append((time.perf_counter() - t0) / frames * 1e6)
            cpu.append((time.process_time() - c0) / frames * 1e6)
        what = "owned array (decoders)" if owned else "copied into slot"
        print(f"| {what} | {spread(wall, '{:.1f}')} | {spread(cpu, '{:.1f}')} |")
    print()


def bench_synthetic(frames: int) -> None:
    from stream.synthetic.animator import FaceAnimator, SyntheticConfig

    animator = FaceAnimator(SyntheticConfig(width=640, height=480, fps=30.0, seed=0))
    out = np.empty((480, 640, 3), np.uint8)
    for i in range(10):  # warm-up: first-use allocations and caches
        animator.render(i, out)
    ms = np.empty(frames)
    for i in range(frames):
        t0 = time.perf_counter()
        animator.render(100 + i, out)
        ms[i] = (time.perf_counter() - t0) * 1e3
    p50, p99 = np.percentile(ms, [50, 99])
    print("| synthetic render 640×480 | median ms | p99 ms | fps (from median) | fps (mean) |")
    print("|---|---:|---:|---:|---:|")
    print(
        f"| {frames} frames | {p50:.2f} | {p99:.2f} | {1e3 / p50:.0f} "
        f"| {frames / ms.sum() * 1e3:.0f} |"
    )
    print()


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_capture", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--frames", type=int, default=600, help="synthetic frames to time")
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.processor() or ''}"
        f" Python {platform.python_version()}\n"
    )
    bench_videos(args.repeats)
    bench_handoff()
    bench_synthetic(args.frames)


if __name__ == "__main__":
    main()
