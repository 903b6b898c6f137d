"""The MPFNet-style recognizer as an ONNX graph, and an ONNX Runtime session that runs it.

The live path runs the recognizer once per event; in torch that forward pass is ~20-60 ms on
one CPU thread, mostly framework overhead around small 3-D convolutions. The exported graph
holds one fusion variant's softmax:

    inputs   flow (B, 2, T, S, S) float32, aligned-face px     mask (B, S, S) float32 0..1
    outputs  probs (B, E) float32 over EMOTIONS

with a dynamic batch axis; T and S are fixed by the weights. The reference is
``Recognizer.probabilities`` (tests hold the two to 1e-5).

Usage:
    python -m engines.runtime.export_recognizer --out DIR [--weights PATH] [--variant P|C]
        # writes DIR/recognizer_<variant>_<sha256[:12]>.onnx
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from engines.errors import MexliveError, report_error
from engines.models.recognizer import Recognizer
from engines.runtime.export import export_onnx
from engines.weights import load_recognizer


class _ProbabilityGraph(nn.Module):
    def __init__(self, model: Recognizer, variant: str) -> None:
        super().__init__()
        self.model, self.variant = model, variant

    def forward(self, flow: Tensor, mask: Tensor) -> Tensor:
        return torch.softmax(self.model(flow, mask).variant(self.variant), -1)  # (B, E)


def export_recognizer(
    model: Recognizer, path: str | Path, variant: str | None = None, opset: int = 17
) -> Path:
    """Write ``variant`` (default: the live one) of ``model`` to ``path``, atomically (a temp
    file beside it, then a rename). The caller's model is not modified."""
    import copy

    c = model.config
    graph = _ProbabilityGraph(copy.deepcopy(model), variant or c.live_variant)
    args = (torch.zeros(1, 2, c.steps, c.size, c.size), torch.zeros(1, c.size, c.size))
    # Shapes read as ints are T and S, fixed by the weights; only the batch varies.
    axes = {"flow": {0: "batch"}, "mask": {0: "batch"}, "probs": {0: "batch"}}
    return export_onnx(graph, args, path, opset, ["flow", "mask"], ["probs"], axes)


class OnnxRecognizer:
    """An ONNX Runtime session over an exported recognizer graph (CPU, ``threads`` threads)."""

    def __init__(self, path: str | Path, threads: int = 1) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.path = Path(path)
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def probabilities(self, flow: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """flow (B, 2, T, S, S), mask (B, S, S) → probabilities (B, E) float32."""
        feeds = {
            "flow": np.ascontiguousarray(flow, np.float32),
            "mask": np.ascontiguousarray(mask, np.float32),
        }
        return self.session.run(None, feeds)[0]


def cached_onnx_recognizer(
    model: Recognizer, sha256: str, variant: str, cache_dir: str | Path
) -> tuple[OnnxRecognizer, str]:
    """(session, what happened) for the graph of these weights and variant in ``cache_dir``:
    exported on first use, read back after; a damaged file is exported again."""
    path = Path(cache_dir) / f"recognizer_{variant}_{sha256[:12]}.onnx"
    if not path.is_file():
        export_recognizer(model, path, variant)
        return OnnxRecognizer(path), f"exported {path.name}"
    try:
        return OnnxRecognizer(path), f"cached {path.name}"
    except Exception:  # onnxruntime raises its own types for a damaged file; ours to rebuild
        os.unlink(path)
        export_recognizer(model, path, variant)
        return OnnxRecognizer(path), f"re-exported damaged {path.name}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m engines.runtime.export_recognizer", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--weights", default=None, help="recognizer .pt (default: shipped)")
    parser.add_argument("--variant", choices=("P", "C"), default=None, help="default: live one")
    parser.add_argument("--out", required=True, help="output directory")
    args = parser.parse_args(argv)
    try:
        model, manifest = load_recognizer(args.weights)
    except MexliveError as exc:
        return report_error(exc)
    variant = args.variant or model.config.live_variant
    name = f"recognizer_{variant}_{manifest['sha256'][:12]}.onnx"
    print(export_recognizer(model, Path(args.out) / name, variant))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
