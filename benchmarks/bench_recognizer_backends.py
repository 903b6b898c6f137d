"""The recognizer's forward pass per event on torch (the reference) and on ONNX Runtime.

Usage:
    python -m benchmarks.bench_recognizer_backends [--events 300] [--weights PATH]

One stack at a time, as the live path runs it (batch 1, one thread each), on real stacks when
a synthetic clip can be tracked (the stacks a live event gets), else on random ones. Prints
median and p99 milliseconds per backend, their ratio measured in the same run, and the largest
difference between the two outputs.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time

import numpy as np

from benchmarks.privacy_report import machine
from stream.face.flow_stack import FlowStack
from stream.live.recognition import EventRecognizer


def live_stacks(recognizer: EventRecognizer, count: int) -> list[FlowStack]:
    """Onset→apex stacks of the micro-expressions of synthetic clips, as a live event has them."""
    from stream.privacy.attack import ClipSource
    from stream.privacy.recognizers import fill_history

    stacks: list[FlowStack] = []
    seed = 11
    while len(stacks) < count:
        for clip in ClipSource(None, seed, seconds=30.0, micro_per_min=30.0).clips():
            fill_history(recognizer, clip.analysis())
            stack = recognizer.stack(clip.onset, clip.apex)
            if stack is not None:
                stacks.append(stack)
        seed += 1
    return stacks[:count]


def timed(fn, stacks: list[FlowStack], repeats: int) -> tuple[np.ndarray, list[np.ndarray]]:
    seconds, outputs = [], []
    for k in range(repeats):
        stack = stacks[k % len(stacks)]
        t0 = time.perf_counter()
        out = fn(stack)
        seconds.append(time.perf_counter() - t0)
        outputs.append(out)
    return 1e3 * np.array(seconds), outputs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_recognizer_backends", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--events", type=int, default=300, help="forward passes per backend")
    parser.add_argument("--stacks", type=int, default=20, help="distinct live stacks")
    parser.add_argument("--weights", default=None, help="recognizer .pt (default: shipped)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as cache:
        reference = EventRecognizer(args.weights, backend="torch")
        onnx = EventRecognizer(args.weights, backend="onnxruntime", cache_dir=cache)
        stacks = live_stacks(reference, args.stacks)
        rows = {}
        for name, rec in (("torch", reference), ("onnxruntime", onnx)):
            timed(rec.probabilities, stacks, 10)  # warm-up
            rows[name] = timed(rec.probabilities, stacks, args.events)
    ms_torch, out_torch = rows["torch"]
    ms_ort, out_ort = rows["onnxruntime"]
    diff = max(float(np.abs(a - b).max()) for a, b in zip(out_torch, out_ort, strict=True))
    print(f"Machine: {machine()}; {args.events} events, {len(stacks)} live stacks, 1 thread")
    print("\n| backend | median ms / event | p99 ms |")
    print("|---|---:|---:|")
    for name, (ms, _) in rows.items():
        print(f"| {name} | {np.median(ms):.2f} | {np.percentile(ms, 99):.2f} |")
    print(
        f"\nonnxruntime / torch, median: {np.median(ms_ort) / np.median(ms_torch):.2f}; "
        f"largest |probability difference|: {diff:.1e}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
