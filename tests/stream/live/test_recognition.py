"""Live recognition: the face ring, per-event stacks, and the fusion recorded in each event."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from engines.models.recognizer import Recognizer, RecognizerConfig
from engines.models.spotter import Spotter, SpotterConfig
from engines.weights import WeightsError, save_recognizer, save_spotter
from stream.contracts import AlignedFace, FrameResults
from stream.face.features import feature_names
from stream.face.rois import canonical_landmarks
from stream.live.recognition import EventRecognizer, FaceHistory, recognizer_from_flags
from stream.live.spotting import SpottingStage
from stream.output.events import validate_event


@pytest.fixture
def recognizer_weights(tmp_path):
    torch.manual_seed(0)
    model = Recognizer(RecognizerConfig(steps=3, size=16, widths=(4, 8, 8), fusion_hidden=8))
    path = tmp_path / "recognizer.pt"
    sha = save_recognizer(model, path)
    (tmp_path / "recognizer.json").write_text(json.dumps({"file": path.name, "sha256": sha}))
    return path


@pytest.fixture
def spotter_weights(tmp_path):
    torch.manual_seed(0)
    model = Spotter(SpotterConfig(n_features=len(feature_names()), d_model=16, n_layers=1))
    path = tmp_path / "spotter.pt"
    sha = save_spotter(model, path, list(feature_names()))
    (tmp_path / "manifest.json").write_text(json.dumps({"file": "spotter.pt", "sha256": sha}))
    return path


def aligned(seq: int, rng: np.random.Generator, ok: bool = True) -> AlignedFace:
    face = rng.integers(0, 255, (160, 160), dtype=np.uint8) if ok else None
    return AlignedFace(seq, seq * 33_333_333, face, canonical_landmarks() if ok else None, ok)


def test_face_history_ring():
    history = FaceHistory(capacity=4)
    rng = np.random.default_rng(0)
    faces = [rng.integers(0, 255, (8, 8), dtype=np.uint8) for _ in range(6)]
    for seq, face in enumerate(faces):
        history.add(seq, face, np.zeros((68, 2), np.float32))
    assert [history.has(s) for s in range(6)] == [False, False, True, True, True, True]
    np.testing.assert_array_equal(history.face(5), faces[5])
    history.clear()
    assert not any(history.has(s) for s in range(6))


def test_fusion_and_its_record(recognizer_weights):
    recognizer = EventRecognizer(recognizer_weights, recognizer_weight=0.5)
    rng = np.random.default_rng(0)
    for seq in range(20):
        recognizer.observe(FrameResults(aligned=aligned(seq, rng)))
    spotter = {"negative": 0.2, "positive": 0.7, "surprise": 0.1}
    probs, sources, ms = recognizer.fuse(spotter, 10, 16)
    assert sources["fusion"] == "mean" and sources["spotter"] == spotter and ms >= 0
    rec = sources["recognizer"]
    for e in spotter:
        assert probs[e] == pytest.approx(0.5 * spotter[e] + 0.5 * rec[e], abs=2e-4)
    stack = recognizer.stack(10, 16)
    direct = recognizer.probabilities(stack)  # the same stack, straight through the model
    np.testing.assert_allclose([rec[e] for e in spotter], direct, atol=1e-4)
    # faces gone (a lost face empties the ring): the spotter alone, and the record says so
    recognizer.observe(FrameResults(aligned=aligned(20, rng, ok=False)))
    probs, sources, _ = recognizer.fuse(spotter, 10, 16)
    assert probs == spotter and sources["fusion"] == "spotter_only"
    assert sources["recognizer"] is None


def test_event_records_both_contributions(spotter_weights, recognizer_weights):
    events = []
    recognizer = EventRecognizer(recognizer_weights)
    stage = SpottingStage(
        events.append, weights=spotter_weights, backend="torch", recognizer=recognizer
    )
    stage.decoder.baseline_floor = 0.0
    rng = np.random.default_rng(0)
    spotter_probs = np.array([0.2, 0.7, 0.1])
    for i in range(300):  # a clean score bump at 5 s, the faces of every frame in the ring
        t = i / 30
        recognizer.observe(FrameResults(aligned=aligned(i, rng)))
        score = float(np.exp(-0.5 * ((t - 5.0) / 0.08) ** 2))
        for spotted in stage.decoder.update(i, t, i, score, spotter_probs):
            stage._emit(spotted)
    assert len(events) == 1
    line = json.loads(json.dumps(events[0].to_dict()))
    assert validate_event(line) == []
    sources = line["emotion_sources"]
    assert sources["fusion"] == "mean" and set(sources["recognizer"]) == set(sources["spotter"])
    assert sources["recognizer_model"]["sha256"] == recognizer.manifest["sha256"]
    assert line["emotion"] == max(line["emotion_probs"], key=line["emotion_probs"].get)
    assert line["latency_ms"]["recognizer"] >= 0
    broken = {**line, "emotion_sources": {**sources, "fusion": "vote"}}
    assert any("fusion" in p for p in validate_event(broken))


def test_events_without_recognizer_have_no_sources(spotter_weights):
    events = []
    stage = SpottingStage(events.append, weights=spotter_weights, backend="torch")
    stage.decoder.baseline_floor = 0.0
    for i in range(300):
        score = float(np.exp(-0.5 * ((i / 30 - 5.0) / 0.08) ** 2))
        for spotted in stage.decoder.update(i, i / 30, i, score, np.array([0.2, 0.7, 0.1])):
            stage._emit(spotted)
    assert "emotion_sources" not in events[0].to_dict()


def test_flags(recognizer_weights, tmp_path):
    assert recognizer_from_flags(str(recognizer_weights), disabled=True) is None
    assert recognizer_from_flags(str(recognizer_weights), False, log=lambda s: None) is not None
    with pytest.raises(WeightsError, match="missing"):
        recognizer_from_flags(str(tmp_path / "recognizer_x.pt"), False)
