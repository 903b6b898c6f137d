"""The context stage (blink lines, spottable, the interval summary) and the context gate."""

from __future__ import annotations

import json

import numpy as np
import pytest

from stream.contracts import AlignedFace, Frame, FrameResults
from stream.face.rois import CANONICAL_68
from stream.live.context import ContextGate, ContextStage
from stream.output.events import BlinkEvent, validate_event

FPS = 30.0


def _face(eye_open: float) -> np.ndarray:
    """The canonical face at 90 px between the eyes with lids opened by ``eye_open`` (1 =
    as drawn, 0 = shut)."""
    landmarks = CANONICAL_68.astype(np.float64) * 90.0 + 200.0  # (68, 2)
    for upper, lower in ((37, 41), (38, 40), (43, 47), (44, 46)):
        middle = (landmarks[upper] + landmarks[lower]) / 2
        landmarks[upper] = middle + eye_open * (landmarks[upper] - middle)
        landmarks[lower] = middle + eye_open * (landmarks[lower] - middle)
    return landmarks


def _run(stage: ContextStage, openings: list[float]) -> list[FrameResults]:
    out = []
    rng = np.random.default_rng(0)
    image = np.zeros((2, 2, 3), np.uint8)
    for i, eye_open in enumerate(openings):
        landmarks = _face(eye_open) + rng.normal(0, 0.1, (68, 2))  # dlib-like jitter
        aligned = AlignedFace(i, 0, None, None, True, landmarks_px=landmarks.astype(np.float32))
        results = FrameResults(aligned=aligned)
        stage(Frame(i, round(i / FPS * 1e9), i / FPS, image), results)
        out.append(results)
    return out


def test_a_blink_is_one_line_and_the_face_is_not_spottable_during_it():
    lines: list[BlinkEvent] = []
    stage = ContextStage(lines.append)
    # 3 s open, 150 ms shut (5 frames), 2 s open
    openings = [1.0] * 90 + [0.1] * 5 + [1.0] * 60
    results = _run(stage, openings)
    assert len(lines) == 1
    blink = lines[0].to_dict()
    assert validate_event(json.loads(json.dumps(blink))) == []
    assert 89 <= blink["onset_frame"] <= 91 and 93 <= blink["offset_frame"] <= 96
    assert blink["type"] == "blink" and stage.blinks == 1
    assert not any(r.spottable for r in results[90:95])
    assert all(r.spottable for r in results[120:])
    summary = stage.summary(92, 94)
    assert summary["blink"] and not summary["speaking"]
    assert not stage.summary(130, 140)["blink"]


def test_a_face_lost_logs_a_blink_that_reopened_and_not_a_closure_still_shut():
    image = np.zeros((2, 2, 3), np.uint8)
    for openings, logged in (([1.0] * 90 + [0.1] * 5 + [1.0] * 2, 1), ([1.0] * 90 + [0.1] * 3, 0)):
        lines: list[BlinkEvent] = []
        stage = ContextStage(lines.append)
        _run(stage, openings)
        n = len(openings)
        stage(Frame(n, 0, n / FPS, image), FrameResults(gap=True))
        assert len(lines) == logged


def test_eyes_shut_for_a_second_are_no_blink_line_but_not_spottable_at_first():
    lines: list[BlinkEvent] = []
    stage = ContextStage(lines.append)
    results = _run(stage, [1.0] * 90 + [0.1] * 30 + [1.0] * 60)
    stage.finish()
    assert lines == [] and stage.blinks == 0
    assert not any(r.spottable for r in results[91:100])  # the first 0.4 s look like a blink


@pytest.mark.parametrize(
    ("kind", "context", "rois", "reason"),
    [
        ("micro", {"blink": True, "speaking": False}, ["eye_l_outer"], "blink"),  # the blink
        ("macro", {"blink": True, "speaking": False}, ["mouth_l"], None),  # a smile with a blink
        ("micro", {"blink": False, "speaking": True}, ["mouth_l", "chin"], "speaking"),  # words
        ("micro", {"blink": False, "speaking": True}, ["chin", "brow_l_inner"], None),  # a brow
        ("micro", {"blink": False, "speaking": False}, ["mouth_l"], None),  # calm: reported
    ],
)
def test_the_gate(kind, context, rois, reason):
    assert ContextGate().reason(kind, context, rois) == reason


def test_an_expression_line_with_context_validates():
    from tests.helpers import expression

    line = expression(context={"speaking": True, "blink": False, "head_speed": 12.5}).to_dict()
    assert validate_event(json.loads(json.dumps(line))) == []
    line["context"] = {"speaking": True}
    assert validate_event(line)
