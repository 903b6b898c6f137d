"""The exported recognizer graph in ONNX Runtime, and its cache (``export_recognizer`` writes
the graph; this module needs no torch once it exists)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np


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


def cached_recognizer_graph(
    sha256: str, variant: str, cache_dir: str | Path, export: Callable[[Path], None]
) -> tuple[OnnxRecognizer, str]:
    """(session, what happened) for the graph of these weights and variant in ``cache_dir``:
    ``export(path)`` writes it on first use (and again over a damaged file); read back after,
    which needs no torch."""
    path = Path(cache_dir) / f"recognizer_{variant}_{sha256[:12]}.onnx"
    if not path.is_file():
        export(path)
        return OnnxRecognizer(path), f"exported {path.name}"
    try:
        return OnnxRecognizer(path), f"cached {path.name}"
    except Exception:  # onnxruntime raises its own types for a damaged file; ours to rebuild
        os.unlink(path)
        export(path)
        return OnnxRecognizer(path), f"re-exported damaged {path.name}"
