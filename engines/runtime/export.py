"""Export the spotter's per-frame STEP graph to ONNX, state as explicit graph inputs/outputs.

The live path runs `Spotter.step` once per frame for every stream; that graph is small, has no
loop, no complex numbers and no FFT (the chunked scan of `engines/models/ssm.py` is training-only),
so
it exports with the legacy TorchScript exporter and runs in any ONNX runtime.

Graph (B = streams, a dynamic axis; L = n_layers, D = d_inner, K = d_conv, N = d_state):

    inputs   x (B, F) float32   conv_state (L, B, D, K-1)   ssm_state (L, B, D, N)
             valid (B,) float32, 1 = a face row, 0 = an invalid row (zero input, as in `step`)
    outputs  apex (B,)   kind_logits (B, 2)   emotion_logits (B, 3)
             conv_state_out (L, B, D, K-1)   ssm_state_out (L, B, D, N)

torch 2.13's `torch.onnx.export` defaults to the dynamo exporter, which needs `onnxscript`;
`dynamo=False` selects the TorchScript exporter, which needs nothing beyond torch and onnx.

A second graph serves offline files: `export_chunk` unrolls T steps (default 32) into one graph
over x (B, T, F) and valid (B, T) with the same state inputs/outputs, so a file is run T frames
per call with the step's exact arithmetic (float32 only, no Loop/Scan: what TensorRT's parser
takes; the training-time chunked scan computes in float64, which TensorRT does not).

Usage:
    python -m engines.runtime.export [--weights PATH] --out DIR [--chunk 32]
        # writes DIR/spotter_step.onnx (and DIR/spotter_chunk32.onnx with --chunk)
"""

from __future__ import annotations

__all__ = ["INPUT_NAMES", "OUTPUT_NAMES", "export_onnx", "export_step"]

import argparse
import os
import tempfile
import warnings
from pathlib import Path

import torch
from torch import Tensor, nn

from engines.errors import MexliveError, report_error
from engines.models.spotter import Spotter, SpotterState
from engines.runtime.graph import INPUT_NAMES, OUTPUT_NAMES
from engines.weights import load_spotter, sha256_file

# Ops that would mean the graph is not a plain per-frame step (a scan loop, an FFT).
FORBIDDEN_OPS = frozenset({"Loop", "Scan", "DFT", "STFT"})
DEFAULT_NAME = "spotter_step.onnx"
_EXPORT_BATCH = 2  # traced with 2 streams (not 1) so no batch-1 broadcast gets baked in


class _StepGraph(nn.Module):
    """`Spotter.step` with flat tensor inputs and outputs: what the ONNX graph exposes."""

    def __init__(self, model: Spotter) -> None:
        super().__init__()
        self.model = model

    def forward(
        self, x: Tensor, conv_state: Tensor, ssm_state: Tensor, valid: Tensor
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        # valid arrives as float (ONNX runtimes handle float inputs everywhere); > 0.5 → True.
        out, state = self.model.step(x, SpotterState(conv_state, ssm_state), valid > 0.5)
        return out.apex, out.kind_logits, out.emotion_logits, state.conv, state.ssm


class _ChunkGraph(nn.Module):
    """T unrolled `Spotter.step`s: x (B, T, F), valid (B, T) → per-frame heads, next state."""

    def __init__(self, model: Spotter, chunk: int) -> None:
        super().__init__()
        self.model = model
        self.chunk = chunk

    def forward(
        self, x: Tensor, conv_state: Tensor, ssm_state: Tensor, valid: Tensor
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        state = SpotterState(conv_state, ssm_state)
        apex, kind, emotion = [], [], []
        for t in range(self.chunk):  # unrolled by the trace: a fixed T, no Loop node
            out, state = self.model.step(x[:, t], state, valid[:, t] > 0.5)
            apex.append(out.apex)  # (B,)
            kind.append(out.kind_logits)  # (B, 2)
            emotion.append(out.emotion_logits)  # (B, 3)
        return (
            torch.stack(apex, 1),  # (B, T)
            torch.stack(kind, 1),  # (B, T, 2)
            torch.stack(emotion, 1),  # (B, T, 3)
            state.conv,
            state.ssm,
        )


def export_chunk(model: Spotter, path: str | Path, chunk: int = 32, opset: int = 17) -> Path:
    """Write the T-step chunk graph (see the module docstring); batch axis dynamic, T fixed."""
    if chunk < 1:
        raise ValueError("chunk must be >= 1")
    c = model.config
    state = model.init_state(_EXPORT_BATCH)
    args = (
        torch.zeros(_EXPORT_BATCH, chunk, c.n_features),  # x (B, T, F)
        state.conv.cpu(),
        state.ssm.cpu(),
        torch.ones(_EXPORT_BATCH, chunk),  # valid (B, T)
    )
    return _export(_ChunkGraph(model, chunk), args, path, opset)


def export_step(model: Spotter, path: str | Path, opset: int = 17) -> Path:
    """Write the spotter's step graph to `path` (atomically: a temp file, then a rename).

    The batch axis is dynamic, so one file serves any number of streams. The model is exported
    in eval mode on CPU; the caller's model is not modified. Returns the path.
    """
    c = model.config
    state = model.init_state(_EXPORT_BATCH)
    args = (
        torch.zeros(_EXPORT_BATCH, c.n_features),  # x (B, F)
        state.conv.cpu(),  # (L, B, D, K-1)
        state.ssm.cpu(),  # (L, B, D, N)
        torch.ones(_EXPORT_BATCH),  # valid (B,)
    )
    return _export(_StepGraph(model), args, path, opset)


def _export(graph: nn.Module, args: tuple[Tensor, ...], path: str | Path, opset: int) -> Path:
    dynamic_axes = {
        "x": {0: "batch"},
        "conv_state": {1: "batch"},
        "ssm_state": {1: "batch"},
        "valid": {0: "batch"},
        "apex": {0: "batch"},
        "kind_logits": {0: "batch"},
        "emotion_logits": {0: "batch"},
        "conv_state_out": {1: "batch"},
        "ssm_state_out": {1: "batch"},
    }
    # The per-layer loop iterates the stacked state's first axis, n_layers, which is fixed by
    # the config; only the batch axis varies, so the trace is exact.
    return export_onnx(
        graph, args, path, opset, list(INPUT_NAMES), list(OUTPUT_NAMES), dynamic_axes
    )


def export_onnx(
    graph: nn.Module,
    args: tuple[Tensor, ...],
    path: str | Path,
    opset: int,
    input_names: list[str],
    output_names: list[str],
    dynamic_axes: dict[str, dict[int, str]],
) -> Path:
    """Trace ``graph`` (eval, CPU) on ``args`` to ``path`` with the TorchScript exporter,
    atomically, and check it (``check_graph``). Shapes the trace reads as constants must be
    fixed by the weights: only the ``dynamic_axes`` may vary."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    graph = graph.cpu().eval()
    # A temp file beside the target, then os.replace: a reader never sees a half-written graph.
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            # The TorchScript exporter is deprecated in favour of dynamo; that is known here.
            warnings.simplefilter("ignore", category=DeprecationWarning)
            warnings.simplefilter("ignore", category=torch.jit.TracerWarning)
            torch.onnx.export(
                graph,
                args,
                tmp,
                input_names=input_names,
                output_names=output_names,
                dynamic_axes=dynamic_axes,
                opset_version=opset,
                do_constant_folding=True,
                dynamo=False,
            )
        check_graph(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def op_types(path: str | Path) -> list[str]:
    """The op types of the graph's nodes, in order."""
    import onnx

    return [node.op_type for node in onnx.load(str(path)).graph.node]


def check_graph(path: str | Path) -> None:
    """onnx.checker on the file, plus: no loop / FFT ops. Raises ValueError naming the file."""
    import onnx

    onnx.checker.check_model(str(path))
    bad = sorted(FORBIDDEN_OPS.intersection(op_types(path)))
    if bad:
        raise ValueError(f"step graph {path} contains {bad}: not a per-frame step graph")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=None, help="spotter .pt (default: shipped weights)")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--opset", type=int, default=17)
    parser.add_argument("--chunk", type=int, default=0, help="also write a T-step chunk graph")
    args = parser.parse_args(argv)
    try:
        model, _ = load_spotter(args.weights)
    except MexliveError as exc:
        return report_error(exc)
    path = export_step(model, Path(args.out) / DEFAULT_NAME, opset=args.opset)
    print(f"{path}")
    print(f"sha256 {sha256_file(path)}")
    print(f"nodes {len(op_types(path))}")
    if args.chunk > 0:
        chunk_path = export_chunk(
            model, Path(args.out) / f"spotter_chunk{args.chunk}.onnx", args.chunk, args.opset
        )
        print(f"{chunk_path}\nsha256 {sha256_file(chunk_path)}\nnodes {len(op_types(chunk_path))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
