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

__all__ = ["OnnxRecognizer", "cached_onnx_recognizer", "export_recognizer"]

import argparse
from pathlib import Path

import torch
from torch import Tensor, nn

from engines.errors import MexliveError, report_error
from engines.models.recognizer import Recognizer
from engines.runtime.export import export_onnx
from engines.runtime.onnx_recognizer import OnnxRecognizer, cached_recognizer_graph
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


def cached_onnx_recognizer(
    model: Recognizer, sha256: str, variant: str, cache_dir: str | Path
) -> tuple[OnnxRecognizer, str]:
    """(session, what happened) for the graph of these weights and variant in ``cache_dir``:
    exported on first use, read back after; a damaged file is exported again."""
    return cached_recognizer_graph(
        sha256, variant, cache_dir, lambda path: export_recognizer(model, path, variant)
    )


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
