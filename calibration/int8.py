"""INT8 (QDQ, static) and FP16 variants of the spotter's ONNX step graph, and their accuracy.

The step graph (`engines/runtime/export.py`) carries the streaming state as explicit
inputs/outputs, so
the calibration data must hold REAL states: `calibration_inputs` steps the FP32 model over real
feature rows (state carried from frame to frame, reset at gaps as in the live path) and records
every input of the recorded steps (x, conv_state, ssm_state, valid).

Quantization choice: only the weight-bearing ops (`MatMul`, `Gemm`, `Conv`) are quantized
(`op_types_to_quantize`), weights per channel (QInt8), activations QInt8 (symmetric S8S8; on
the held-out test2 features it beat QUInt8 activations: max|Δapex| 0.087 vs 0.133). The
element-wise recurrent path (the SSM update `h = exp(Δ·A)·h + Δ·B·x`, the conv-state shift,
softplus / SiLU / softmax) stays FP32: its errors would compound frame after frame through
`ssm_state`, and those ops have no INT8 kernels anyway (quantizing them only adds Q/DQ pairs
around FP32 math). Excluding any single MatMul/Gemm did not remove the INT8 error (it is spread
over all of them): INT8 keeps the mean |Δapex| small (~5e-3) but the emotion probabilities can
move by ~0.5 on frames near a class boundary, so check `compare` before shipping it.

Clips are given as `engines.train.data.Clip` objects, as `(L, F)` arrays (all rows valid), or as
`(x (L, F), valid (L,))` pairs.

Usage:
    python -m calibration.int8 --features DIR --out DIR [--weights PATH]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)

from engines.errors import BadInputError, DataError, MexliveError, report_error
from engines.models.spotter import Spotter
from engines.runtime.backends import EngineState, OnnxRuntimeEngine, TorchEngine
from engines.runtime.export import INPUT_NAMES, export_step

if TYPE_CHECKING:
    from engines.train.data import Clip

QUANTIZED_OPS = ("MatMul", "Gemm", "Conv")


def _as_arrays(clip: Any) -> tuple[np.ndarray, np.ndarray]:
    """A clip as (x (L, F) float32, valid (L,) bool)."""
    if hasattr(clip, "x") and hasattr(clip, "valid"):  # engines.train.data.Clip (torch tensors)
        x, valid = np.asarray(clip.x), np.asarray(clip.valid)
    elif isinstance(clip, tuple):
        x, valid = np.asarray(clip[0]), np.asarray(clip[1])
    else:
        x = np.asarray(clip)
        valid = np.ones(x.shape[0], bool)
    if x.ndim != 2 or valid.shape != (x.shape[0],):
        raise ValueError(f"a clip must be x (L, F) with valid (L,), got {x.shape}, {valid.shape}")
    return np.ascontiguousarray(x, np.float32), valid.astype(bool)


def _engine(model: Spotter | str | Path) -> TorchEngine | OnnxRuntimeEngine:
    return TorchEngine(model) if isinstance(model, Spotter) else OnnxRuntimeEngine(model)


def _stream(
    engine: TorchEngine | OnnxRuntimeEngine, clips: Sequence[Any]
) -> Iterator[tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]]:
    """Step `engine` over every clip (batch 1), state carried, reset at invalid rows.

    Yields (the step's inputs, apex (1,), emotion probs (1, 3)) for every frame.
    """
    for clip in clips:
        x, valid = _as_arrays(clip)
        state = engine.init_state(1)
        for t in range(x.shape[0]):
            v = valid[t : t + 1]
            if not v[0]:  # a gap: fresh state, as the live spotter
                state = engine.reset_streams(state, np.ones(1, bool))
            feeds = {
                "x": x[t : t + 1],
                "conv_state": state.conv,
                "ssm_state": state.ssm,
                "valid": v.astype(np.float32),
            }
            apex, probs, state = engine.step(x[t : t + 1], state, v)
            state = EngineState(np.asarray(state.conv), np.asarray(state.ssm))
            yield feeds, apex, probs


def calibration_inputs(
    model: Spotter | str | Path, clips: Sequence[Any], max_frames: int = 2000
) -> list[dict[str, np.ndarray]]:
    """Step-graph inputs recorded while streaming the FP32 model (a `Spotter`, or the path of
    its FP32 step graph) over the clips; at most `max_frames`, spread evenly over all frames."""
    if max_frames < 1:
        raise ValueError("max_frames must be >= 1")
    total = sum(_as_arrays(c)[0].shape[0] for c in clips)
    if total == 0:
        raise ValueError("no frames to calibrate on")
    stride = max(1, -(-total // max_frames))  # ceil
    out: list[dict[str, np.ndarray]] = []
    for i, (feeds, _, _) in enumerate(_stream(_engine(model), clips)):
        if i % stride == 0 and len(out) < max_frames:
            out.append({k: np.array(v, np.float32, copy=True) for k, v in feeds.items()})
    return out


class _Reader(CalibrationDataReader):
    """`onnxruntime.quantization.CalibrationDataReader` over recorded feeds."""

    def __init__(self, feeds: list[dict[str, np.ndarray]]) -> None:
        self._feeds = feeds
        self._it = iter(feeds)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._it, None)

    def rewind(self) -> None:
        self._it = iter(self._feeds)


def quantize_int8(
    fp32_onnx: str | Path, out_path: str | Path, calibration: list[dict[str, np.ndarray]]
) -> Path:
    """Static INT8 quantization, QDQ format (see the module docstring for what is quantized)."""
    if not calibration:
        raise ValueError("calibration is empty")
    missing = set(INPUT_NAMES) - set(calibration[0])
    if missing:
        raise ValueError(f"calibration feeds lack inputs {sorted(missing)}")
    reader = _Reader(calibration)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    quantize_static(
        str(fp32_onnx),
        str(out_path),
        reader,
        quant_format=QuantFormat.QDQ,
        op_types_to_quantize=list(QUANTIZED_OPS),
        per_channel=True,
        activation_type=QuantType.QInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=CalibrationMethod.MinMax,
    )
    return out_path


def convert_fp16(fp32_onnx: str | Path, out_path: str | Path) -> Path:
    """FP16 weights and math, FP32 inputs/outputs (Cast nodes at the graph's edges)."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = convert_float_to_float16(onnx.load(str(fp32_onnx)), keep_io_types=True)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(out_path))
    return out_path


def compare(fp32_onnx: str | Path, other_onnx: str | Path, clips: Sequence[Any]) -> dict[str, Any]:
    """Stream both graphs over the clips (each with its own carried state) and compare apex and
    emotion probabilities frame by frame: max/mean |Δ|, and the frame count."""
    ref = _stream(OnnxRuntimeEngine(fp32_onnx), clips)
    other = _stream(OnnxRuntimeEngine(other_onnx), clips)
    d_apex: list[np.ndarray] = []
    d_prob: list[np.ndarray] = []
    for (_, a0, p0), (_, a1, p1) in zip(ref, other, strict=True):
        d_apex.append(np.abs(a1.astype(np.float64) - a0))
        d_prob.append(np.abs(p1.astype(np.float64) - p0).max(axis=-1))
    if not d_apex:
        raise ValueError("no frames to compare")
    da, dp = np.concatenate(d_apex), np.concatenate(d_prob)
    return {
        "frames": int(da.size),
        "max_abs_apex": float(da.max()),
        "mean_abs_apex": float(da.mean()),
        "max_abs_prob": float(dp.max()),
        "mean_abs_prob": float(dp.mean()),
    }


def step_ms(onnx_path: str | Path, n_features: int, repeats: int = 500) -> float:
    """Median wall time of one batch-1 step (ORT CPU provider, 1 thread), in ms."""
    engine = OnnxRuntimeEngine(onnx_path)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, n_features)).astype(np.float32)
    state = engine.init_state(1)
    for _ in range(20):
        _, _, state = engine.step(x, state)
    times = np.empty(repeats)
    for i in range(repeats):
        t0 = time.perf_counter()
        _, _, state = engine.step(x, state)
        times[i] = time.perf_counter() - t0
    return float(np.median(times) * 1e3)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--features", required=True, help="folder of feature .npz clips to calibrate INT8 on"
    )
    parser.add_argument(
        "--eval-features",
        default=None,
        help="held-out clips to compare the variants on (never the calibration clips)",
    )
    parser.add_argument("--out", required=True, help="output directory for the .onnx files")
    parser.add_argument("--weights", default=None, help="spotter .pt (default: shipped weights)")
    parser.add_argument("--max-frames", type=int, default=2000, help="calibration steps")
    args = parser.parse_args(argv)
    try:
        model, clips, eval_clips = _inputs(args)
    except MexliveError as exc:
        return report_error(exc)
    features = Path(args.features)
    out = Path(args.out)
    fp32 = export_step(model, out / "spotter_step.onnx")
    feeds = calibration_inputs(fp32, clips, max_frames=args.max_frames)
    int8 = quantize_int8(fp32, out / "spotter_step.int8.onnx", feeds)
    fp16 = convert_fp16(fp32, out / "spotter_step.fp16.onnx")

    n_features = model.config.n_features
    frames = sum(c.length for c in eval_clips)
    print(
        f"INT8 calibrated on {len(feeds)} steps of {len(clips)} clips in {features}; "
        f"compared on {len(eval_clips)} clips, {frames} frames\n"
    )
    bar = "\\|"
    print(
        f"| variant | size (KiB) | max{bar}Δapex{bar} | mean{bar}Δapex{bar} | max{bar}Δprob{bar} "
        "| step ms (B=1) |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for name, path in (("fp32", fp32), ("int8 qdq", int8), ("fp16", fp16)):
        if path == fp32:
            err = {"max_abs_apex": 0.0, "mean_abs_apex": 0.0, "max_abs_prob": 0.0}
        else:
            err = compare(fp32, path, eval_clips)
        print(
            f"| {name} | {path.stat().st_size / 1024:.1f} | {err['max_abs_apex']:.2e} | "
            f"{err['mean_abs_apex']:.2e} | {err['max_abs_prob']:.2e} | "
            f"{step_ms(path, n_features):.3f} |"
        )
    return 0


def _inputs(args: argparse.Namespace) -> tuple[Spotter, list[Clip], list[Clip]]:
    """(model, calibration clips, comparison clips) from the flags; MexliveError if unusable."""
    from engines.inputs import takes_motion, takes_nodes
    from engines.train.data import as_motion_input, as_node_input, load_clips
    from engines.weights import load_spotter

    if args.max_frames < 1:
        raise BadInputError(f"--max-frames must be >= 1, got {args.max_frames}")
    features = Path(args.features)
    if not features.is_dir():
        raise DataError(f"features folder {features} does not exist")
    raw = load_clips(features, expected_names=None)
    if not raw:
        raise DataError(f"no clips in {features}")
    # Clips of another layout than the spotter's would only fail inside ONNX Runtime.
    model, manifest = load_spotter(args.weights, feature_names=raw[0].names)
    # The model's own input: the normalised motion rows when its manifest says so.
    prepare = as_motion_input if takes_motion(manifest) else (lambda clip: clip)
    if takes_nodes(manifest):
        prepare = as_node_input
    clips = [prepare(c) for c in raw]
    if not args.eval_features:
        print("warning: comparing on the calibration clips (give --eval-features)", file=sys.stderr)
        return model, clips, clips
    eval_raw = load_clips(args.eval_features, expected_names=raw[0].names)
    eval_clips = [prepare(c) for c in eval_raw]
    if not eval_clips:
        raise DataError(f"no clips in {args.eval_features}")
    return model, clips, eval_clips


if __name__ == "__main__":
    raise SystemExit(main())
