"""Step latency of the spotter per backend and number of streams (batch), one CPU thread each.

Usage:
    python -m benchmarks.bench_backends [--weights PATH] [--frames 300] [--batches 1,16,64,256]

For each backend (torch, onnxruntime FP32 on the CPU provider) and batch B, the shipped spotter
is stepped `--frames` times with its state carried (after a warm-up); each step's wall time
gives median and p99 latency, and frames/s per core = B / median (both backends run on one
thread, so that is the per-core throughput of the live path). One markdown table, with the
machine.

On a machine with a CUDA GPU the table also has torch CUDA (eager, and the step replayed as a
CUDA graph) and TensorRT (FP32, and FP16 / INT8 when --int8-dir holds the calibration.int8
files), for up to 1024 streams: each GPU step is timed from the host, input rows uploaded,
scores read back and the device synchronised (the latency the live pipeline sees); "device
ms" is the same loop without the read-back, timed with CUDA events over all steps (throughput).
Without a GPU those rows read "not measured (no GPU here)".
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time

import numpy as np
import torch

from benchmarks.machine_info import cpu_name
from engines.errors import MexliveError, report_error
from engines.runtime.backends import Engine, OnnxRuntimeEngine, TorchEngine
from engines.runtime.export import export_step
from engines.runtime.gpu import cuda_available
from engines.runtime.tensorrt import tensorrt_usable
from engines.weights import load_spotter

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
    return f"{cpu_name()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_backends", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--weights", default=None)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--batches", default="1,16,64,256")
    parser.add_argument("--gpu-batches", default="1,16,64,256,1024")
    parser.add_argument(
        "--int8-dir", default=None, help="folder with spotter_step.{fp16,int8}.onnx (TensorRT)"
    )
    args = parser.parse_args(argv)
    batches = [int(b) for b in args.batches.split(",")]
    try:
        model, manifest = load_spotter(args.weights)
    except MexliveError as exc:
        return report_error(exc)
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
        gpu_batches = [int(b) for b in args.gpu_batches.split(",")]
        gpu_rows(model, f"{tmp}/spotter_step.onnx", gpu_batches, args.frames, args.int8_dir)
    return 0


def measure_device(engine, n_features: int, batch: int, frames: int) -> tuple[float, float, float]:
    """GPU engine: (median ms, p99 ms) per step with upload + read-back + sync, and device ms
    per step without the read-back (CUDA events over all steps)."""
    rng = torch.Generator(device="cuda").manual_seed(0)
    xs = torch.randn(frames + WARMUP, batch, n_features, device="cuda", generator=rng)
    host = xs.cpu().numpy()
    state = engine.init_state(batch)
    times = []
    for i in range(frames + WARMUP):
        t0 = time.perf_counter()
        _, _, state = engine.step(host[i], state)  # numpy in, numpy out: synchronises
        if i >= WARMUP:
            times.append(time.perf_counter() - t0)
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for i in range(frames):
        _, _, state = engine.step_device(xs[i], state)
    end.record()
    torch.cuda.synchronize()
    ms = np.array(times) * 1e3
    return float(np.median(ms)), float(np.percentile(ms, 99)), start.elapsed_time(end) / frames


def gpu_rows(model, onnx_fp32: str, batches: list[int], frames: int, int8_dir: str | None):
    ok, gpu = cuda_available()
    if not ok:
        for label in ("torch CUDA / CUDA graphs", "TensorRT FP32/FP16/INT8"):
            print(f"| {label} | all | not measured (no GPU here: {gpu}) | | |")
        return
    from engines.runtime.gpu import TorchCudaEngine

    torch.backends.cuda.matmul.allow_tf32 = False  # FP32 means FP32 (parity <= 1e-5)
    engines = [
        (f"torch CUDA eager, {gpu}", TorchCudaEngine(model, cuda_graphs=False)),
        (f"torch CUDA graph, {gpu}", TorchCudaEngine(model, cuda_graphs=True)),
    ]
    usable, why = tensorrt_usable()
    if usable:
        from engines.runtime.tensorrt import TensorRTEngine, TensorRTError

        files = [("FP32", onnx_fp32)]
        if int8_dir:
            files += [(p.upper(), f"{int8_dir}/spotter_step.{p}.onnx") for p in ("fp16", "int8")]
        for precision, path in files:
            try:
                trt_engine = TensorRTEngine.from_onnx(path, precision.lower(), max(batches))
                engines.append((f"{why} {precision}, {gpu}", trt_engine))
            except (TensorRTError, OSError) as exc:
                print(f"| TensorRT {precision} | all | build failed: {exc} | | |")
    else:
        print(f"| TensorRT | all | not measured ({why}) | | |")
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        cuda_ep = OnnxRuntimeEngine(onnx_fp32, providers=["CUDAExecutionProvider"])
        for batch in batches:  # numpy in/out through ORT: its own copies and syncs
            med, p99 = measure(cuda_ep, model.config.n_features, batch, frames)
            fps = batch / med * 1e3
            print(f"| onnxruntime CUDA EP | {batch} | {med:.3f} | {p99:.3f} | {fps:,.0f} |")
    else:
        why = f"onnxruntime {ort.__version__} has no CUDA EP"
        print(f"| onnxruntime CUDA EP | all | not measured ({why}) | | |")
    print(
        "\n| GPU backend | streams | median ms/step (host) | p99 ms/step | device ms/step "
        "| frames/s |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for label, engine in engines:
        for batch in batches:
            med, p99, dev = measure_device(engine, model.config.n_features, batch, frames)
            print(
                f"| {label} | {batch} | {med:.3f} | {p99:.3f} | {dev:.3f} | "
                f"{batch / med * 1e3:,.0f} |"
            )


if __name__ == "__main__":
    raise SystemExit(main())
