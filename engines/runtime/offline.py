"""Whole files through the T-step chunk graph (`engines.runtime.export.export_chunk`) in ONNX
Runtime.

    runner = ChunkRunner("spotter_chunk32.onnx")
    apex, emotion_probs = runner.run(x, valid)      # x (L, F), valid (L,) → (L,), (L, 3)

The same arithmetic as stepping frame by frame (tested to 1e-5), T frames per call. The last
chunk is padded with invalid rows, whose outputs are dropped (the model is causal, so padding
after the last frame changes nothing before it).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engines.runtime.backends import BackendError, _softmax


class ChunkRunner:
    """An ONNX Runtime session over a chunk graph; one stream, state carried across chunks."""

    def __init__(self, onnx_path: str | Path) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise BackendError(f"onnxruntime is not importable: {exc}") from None
        options = ort.SessionOptions()
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(
                str(onnx_path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # ORT's own exception types for a bad file
            raise BackendError(f"chunk graph {onnx_path} cannot be loaded: {exc}") from None
        shapes = {i.name: i.shape for i in self.session.get_inputs()}
        if len(shapes.get("x", ())) != 3:
            raise BackendError(f"{onnx_path} is not a chunk graph (x is not (B, T, F))")
        _, self.chunk, self.n_features = shapes["x"]
        self._conv_shape, self._ssm_shape = shapes["conv_state"], shapes["ssm_state"]

    def run(self, x: np.ndarray, valid: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Feature rows x (L, F), valid (L,) bool → apex (L,), emotion probabilities (L, 3)."""
        length = x.shape[0]
        valid = np.ones(length, bool) if valid is None else np.asarray(valid, bool)
        padded = -(-length // self.chunk) * self.chunk  # ceil to whole chunks
        xs = np.zeros((padded, self.n_features), np.float32)  # (L', F)
        xs[:length] = np.nan_to_num(x)  # invalid rows may hold NaN; they are masked anyway
        vs = np.zeros(padded, np.float32)  # (L',)
        vs[:length] = valid
        n, _, d, k = self._conv_shape
        conv = np.zeros((n, 1, d, k), np.float32)
        ssm = np.zeros((n, 1, d, self._ssm_shape[3]), np.float32)
        apex, emotion = [], []
        for start in range(0, padded, self.chunk):
            part = slice(start, start + self.chunk)
            feeds = {"x": xs[None, part], "conv_state": conv, "ssm_state": ssm}
            a, _, e, conv, ssm = self.session.run(None, {**feeds, "valid": vs[None, part]})
            apex.append(a[0])  # (T,)
            emotion.append(e[0])  # (T, 3)
        return np.concatenate(apex)[:length], _softmax(np.concatenate(emotion)[:length])
