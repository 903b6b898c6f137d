"""Step latency of the spotter per backend and number of streams (batch), one CPU thread each.

Usage:
    python benchmarks/bench_backends.py [--weights PATH] [--frames 300] [--batches 1,16,64,256]

For each backend (torch, onnxruntime FP32 on the CPU provider) and batch B, the shipped spotter
is stepped `--frames` times with its state carried (after a warm-up); each step's wall time
gives median and p99 latency, and frames/s per core = B / median (both backends run on one
thread, so that is the per-core throughput of the live path). One markdown table, with the
machine. GPU backends arrive in a later step: their rows read "not measured (no GPU here)".
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time

import numpy as np
import torch

from engines.backends import Engine, OnnxRuntimeEngine, TorchEngine
from engines.export import export_step
from engines.weights import WeightsError, load_spotter

WARMUP = 20


def measure(engine: Engine, n_features: int, batch: int, frames: int) -> tuple[float, float]:
    """(median ms, p99 ms) of one step for `batch` streams, state carried between steps."""
    rng = np.random.default_rng(0)
    xs = rng.standard_normal((frames + WARMUP, batch, n_features)).astype(np.float32)
    state = engine.init_state(batch)
    times = []
    for i, x in enumerate(xs):
        t0 = time.perf_counter()
        _, _, state = engine.step(x, state)
        if i >= WARMUP:  # the first steps allocate and warm caches
            times.append(time.perf_counter() - t0)
    ms = np.array(times) * 1e3
    return float(np.median(ms)), float(np.percentile(ms, 99))


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if "model name" in line)
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=None)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--batches", default="1,16,64,256")
    args = parser.parse_args(argv)
    batches = [int(b) for b in args.batches.split(",")]
    try:
        model, manifest = load_spotter(args.weights)
    except WeightsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    torch.set_num_threads(1)  # like ORT's 1 intra-op thread: per-core numbers for both
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        engines: list[tuple[str, Engine]] = [
            (f"torch {torch.__version__} FP32", TorchEngine(model)),
            (
                f"onnxruntime {ort.__version__} FP32 (CPU EP)",
                OnnxRuntimeEngine(export_step(model, f"{tmp}/spotter_step.onnx")),
            ),
        ]
        f = model.config.n_features
        print(f"Machine: {machine()}; 1 thread per backend; {args.frames} frames per row")
        print(f"Model: shipped spotter sha256 {str(manifest['sha256'])[:12]}…, {f} features\n")
        print("| backend | streams | median ms/step | p99 ms/step | frames/s per core |")
        print("|---|---:|---:|---:|---:|")
        for label, engine in engines:
            for batch in batches:
                med, p99 = measure(engine, f, batch, args.frames)
                print(f"| {label} | {batch} | {med:.3f} | {p99:.3f} | {batch / med * 1e3:,.0f} |")
        for label in ("onnxruntime CUDA EP", "TensorRT FP16"):
            print(f"| {label} | all | not measured (no GPU here) | | |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
