"""The shipped node spotter on a real fixture clip: ONNX Runtime and torch give the same
scores and the same events."""

from __future__ import annotations

import numpy as np
import pytest

from engines.decoding import fixed_decoder
from engines.inputs import takes_nodes
from engines.weights import verify_spotter
from stream.contracts import FeatureRow, Frame, FrameResults
from stream.live.spotting import SpottingStage

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def lp_d5():
    from stream.app.inspection import featurize
    from tests.helpers import fixtures_root

    root = fixtures_root()
    if root is None:
        pytest.skip("face fixtures not found (set MEXLIVE_FIXTURES or provide ../shared/fixtures)")
    return featurize(root / "videos" / "lp_d5.mp4", progress=False)


def _run(features, backend: str, cache) -> tuple[np.ndarray, list]:
    # a low fixed threshold, so that a short clip decides some intervals to compare
    stage = SpottingStage(
        lambda event: None, backend=backend, cache_dir=cache, decoder=fixed_decoder(0.02)
    )
    decided = []
    stage._emit = decided.append
    scores = np.full(features.length, np.nan)
    image = np.zeros((2, 2, 3), np.uint8)
    for i in range(features.length):
        t_s = float(features.t_s[i])
        frame = Frame(i, round(t_s * 1e9), t_s, image)
        row = FeatureRow(i, frame.t_mono_ns, features.values[i], bool(features.valid[i]))
        row.nodes, row.nodes_valid = features.nodes[i], features.nodes_valid[i]
        results = FrameResults(features=row)
        results.context = features.contexts[i]
        stage(frame, results)
        if results.apex_score is not None:
            scores[i] = results.apex_score
    stage.finish()
    return scores, decided


def test_shipped_weights_read_the_node_rows():
    _, manifest = verify_spotter()
    assert takes_nodes(manifest) and "operating_point" in manifest


def test_onnx_and_torch_give_the_same_events_on_a_real_clip(lp_d5, tmp_path):
    torch_scores, torch_events = _run(lp_d5, "torch", tmp_path)
    ort_scores, ort_events = _run(lp_d5, "onnxruntime", tmp_path)
    assert np.isfinite(torch_scores).sum() > 50
    # tolerance: float32 rounding (ONNX Runtime fuses ops differently), as test_backends
    np.testing.assert_allclose(ort_scores, torch_scores, atol=1e-5, equal_nan=True)
    key = [(e.onset_seq, e.apex_seq, e.offset_seq, e.kind) for e in torch_events]
    assert key == [(e.onset_seq, e.apex_seq, e.offset_seq, e.kind) for e in ort_events]


def test_a_stage_driven_without_the_front_end_fills_in_the_same_node_rows(fixtures_dir):
    # benchmarks drive SpottingStage with aligned faces only: it makes the node rows itself,
    # the ones the live features stage (FaceAnalysis(nodes=True)) would have made
    from stream.capture.sources import AVSource
    from stream.face.align import FaceTracker
    from stream.face.features import FeatureExtractor
    from stream.face.nodes import NodeFlow

    tracker, extractor, front_end = FaceTracker(), FeatureExtractor(), NodeFlow()
    stage = SpottingStage(lambda event: None, backend="torch")
    filled = 0
    with AVSource(fixtures_dir / "videos" / "st_rd2.mp4") as source:
        while filled < 40 and (source_frame := source.read()) is not None:
            i, t_s = source_frame.index, source_frame.index / 25.0
            frame = Frame(i, round(t_s * 1e9), t_s, source_frame.image)
            aligned = tracker.update(frame.image, i, frame.t_mono_ns, t_s)
            row = extractor.update(aligned)
            want = front_end.update(aligned)
            results = FrameResults(aligned=aligned, features=row)
            stage(frame, results)
            assert row.nodes is not None and results.context is not None
            np.testing.assert_array_equal(row.nodes, want.residual)  # same code, same numbers
            np.testing.assert_array_equal(row.nodes_valid, want.valid)
            filled += int(want.valid.all())
    assert filled == 40
