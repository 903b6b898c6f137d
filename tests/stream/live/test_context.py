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


# ---- brows that hold still (node motion from the front end) --------------------------------


def _brow_rows(length: int, moving: range, px: float) -> list:
    """Feature rows whose node motion is 0.3 px everywhere and ``px`` at every brow node on
    the ``moving`` frames."""
    from stream.contracts import FeatureRow
    from stream.face.nodes import N_NODES, NODE_GROUPS

    brows = [i for i, g in enumerate(NODE_GROUPS) if g == "brows"]
    rows = []
    for i in range(length):
        nodes = np.full((3, N_NODES, 2), 0.3 / np.sqrt(2), np.float32)  # (O, N, 2)
        if i in moving:
            nodes[:, brows] = (0.0, px)
        rows.append(FeatureRow(i, 0, np.zeros(1, np.float32), True, nodes, np.ones(3, bool)))
    return rows


def _run_with_nodes(stage: ContextStage, rows: list) -> list[FrameResults]:
    out = []
    image = np.zeros((2, 2, 3), np.uint8)
    for i, row in enumerate(rows):
        landmarks = _face(1.0).astype(np.float32)
        aligned = AlignedFace(i, 0, None, None, True, landmarks_px=landmarks)
        results = FrameResults(aligned=aligned, features=row)
        stage(Frame(i, round(i / FPS * 1e9), i / FPS, image), results)
        out.append(results)
    return out


def test_moving_brows_make_the_face_not_spottable_for_a_second():
    from stream.live.context import STILL_PX, STILL_WINDOW_S
    from stream.ui.hud import face_state

    # 2 s still, brows moving 3 px for 0.5 s (frames 60-74), then still for 3 s
    results = _run_with_nodes(ContextStage(lambda line: None), _brow_rows(165, range(60, 75), 3.0))
    assert 3.0 > STILL_PX > 0.3
    assert all(r.spottable and r.brows_moving is False for r in results[:60])
    assert all(not r.spottable and r.brows_moving for r in results[60:75])
    assert face_state(results[70]) == "not spottable: brows moving"
    # the last moving frame leaves the window STILL_WINDOW_S later (media time)
    free = 74 + round(STILL_WINDOW_S * FPS) + 1
    assert all(not r.spottable for r in results[75 : free - 1])
    assert all(r.spottable for r in results[free:])


def test_brow_motion_under_the_threshold_and_no_nodes_change_nothing():
    still = _run_with_nodes(ContextStage(lambda line: None), _brow_rows(60, range(20, 30), 2.0))
    assert all(r.spottable and r.brows_moving is False for r in still)
    # the classic spotter runs no node front end: nothing is claimed about the brows
    bare = _run(ContextStage(lambda line: None), [1.0] * 60)
    assert all(r.brows_moving is None for r in bare) and bare[-1].spottable
