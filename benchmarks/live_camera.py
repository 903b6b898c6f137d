"""A 200-fps camera that never waits: pre-rendered frames pushed at their due times.

    python -m benchmarks.live_camera [--seconds 60] [--fps 200] [--stage-threads 1]

``--source synthetic --fps 200`` is not a camera: its frames are rendered in the capture
thread (about 2 ms each, holding the GIL), and it is not a live source, so when the analysis
falls behind it waits instead of dropping (its ``late`` counter says by how much). A camera's
driver hands over a finished buffer on time whatever the analysis does. So here the synthetic
face is rendered first (``--loop-frames`` frames, played forwards then backwards so the face
never jumps), then a pusher thread hands one to a ``PushedSource`` (a live source) at each due
time; the ring drops what the analysis cannot take, and the drops are counted. Latency is from
the frame's due time to the end of its last stage, over every frame (not a window).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import numpy as np

from stream.capture.pushed import PushedSource
from stream.capture.sources import SyntheticSource
from stream.live.builder import LiveConfig, RunLimits, build_live
from stream.live.pipeline import Stage
from stream.output.events import EventBus


@dataclass
class CameraRun:
    fps: float
    seconds: float
    stage_threads: int
    align: str
    pushed: int
    processed: int
    dropped: dict[str, int]
    overflow: int
    pusher_late_p99_ms: float  # how late the pusher itself was (GIL): part of the latency
    latency_p50_ms: float
    latency_p99_ms: float
    balanced: bool

    @property
    def label(self) -> str:
        if self.align == "process":
            return "align process"
        return f"{self.stage_threads} thread{'s' if self.stage_threads > 1 else ''}"

    @property
    def lost(self) -> int:
        return self.pushed - self.processed

    def line(self) -> str:
        return (
            f"camera {self.fps:g} fps for {self.seconds:g} s, {self.label}: {self.processed} "
            f"of {self.pushed} frames analysed, lost {self.lost} "
            f"(ring {sum(self.dropped.values())}, source backlog {self.overflow}); due → frame "
            f"done p50 {self.latency_p50_ms:.2f} ms, p99 {self.latency_p99_ms:.2f} ms; pusher "
            f"late p99 {self.pusher_late_p99_ms:.2f} ms"
        )


def rendered_loop(n_frames: int, fps: float) -> list[np.ndarray]:
    """(H, W, 3) uint8 synthetic frames, forwards then backwards (no jump at the seam)."""
    source = SyntheticSource(realtime=False, max_frames=n_frames)
    source.config.fps = fps
    frames: list[np.ndarray] = []
    with source:
        while (frame := source.read()) is not None:
            frames.append(frame.image)
    return frames + frames[-2:0:-1]


def run_camera(
    seconds: float,
    fps: float = 200.0,
    stage_threads: int = 1,
    loop_frames: int = 400,
    ring: int | None = None,
    align: str = "inline",
) -> CameraRun:
    frames = rendered_loop(loop_frames, fps)
    source = PushedSource(name=f"camera {fps:g} fps", backlog=2)
    due_ns: dict[int, int] = {}
    latency_ms: list[float] = []

    def record(frame, results):
        due = due_ns.pop(frame.seq, None)
        if due is not None:
            latency_ms.append((time.monotonic_ns() - due) / 1e6)

    config = LiveConfig(
        source=source,
        limits=RunLimits(
            stage_threads=stage_threads,
            align=align,
            ring_policy="drop_oldest",
            ring_capacity=ring or RunLimits.ring_capacity,
        ),
        extra_stages=(Stage("latency", record),),
    )
    pipeline = build_live(config, EventBus([])).pipeline
    pipeline.start()
    late_ms: list[float] = []
    t0 = time.monotonic_ns()
    n_due = int(seconds * fps)
    for i in range(n_due):
        due = t0 + round(i * 1e9 / fps)
        delay = (due - time.monotonic_ns()) / 1e9
        if delay > 0:
            time.sleep(delay)
        late_ms.append((time.monotonic_ns() - due) / 1e6)
        due_ns[i] = due  # before the push: the worker may finish it at once
        source.push(frames[i % len(frames)], due / 1e9)
    source.end()
    pipeline.wait(10.0)
    summary = pipeline.stop()
    p50, p99 = np.percentile(latency_ms, [50, 99]) if latency_ms else (np.nan, np.nan)
    return CameraRun(
        fps=fps,
        seconds=seconds,
        stage_threads=stage_threads,
        align=align,
        pushed=source.pushed,
        processed=summary.processed,
        dropped=dict(summary.dropped),
        overflow=source.counters()["overflow"],
        pusher_late_p99_ms=float(np.percentile(late_ms, 99)),
        latency_p50_ms=float(p50),
        latency_p99_ms=float(p99),
        balanced=summary.balanced,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.live_camera", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--seconds", type=float, default=60.0, help="how long the camera runs")
    parser.add_argument("--fps", type=float, default=200.0, help="the camera's frame rate")
    parser.add_argument("--stage-threads", type=int, choices=(1, 2), default=1)
    parser.add_argument("--align", choices=("inline", "process"), default="inline")
    parser.add_argument("--loop-frames", type=int, default=400, help="frames rendered first")
    parser.add_argument("--ring", type=int, default=None, help="ring capacity (the CLI's --ring)")
    args = parser.parse_args(argv)
    run = run_camera(
        args.seconds, args.fps, args.stage_threads, args.loop_frames, args.ring, args.align
    )
    print(run.line())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
