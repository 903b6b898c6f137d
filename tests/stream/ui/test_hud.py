"""The HUD: drawn where it should be from a HudState fed like the pipeline feeds it."""

from __future__ import annotations

import numpy as np
import pytest

from stream.contracts import Frame, FrameResults
from stream.face.align import FaceTracker
from stream.synthetic.animator import FaceAnimator, SyntheticConfig
from stream.ui.hud import HudOptions, HudState, draw_face_box, draw_hud
from tests.helpers import expression


@pytest.fixture(scope="module")
def face_frame():
    """A real synthetic frame and its real alignment."""
    image = FaceAnimator(SyntheticConfig(seed=2, noise_sigma=0.0)).render(0)
    aligned = FaceTracker().update(image, 0, 0, 0.0)
    assert aligned.ok
    return image, FrameResults(aligned=aligned)


def fed_state(frames: int = 200) -> HudState:
    """A state after ``frames`` processed frames at 30 fps: a score bump and two events."""
    state = HudState(trace_len=150)
    for i in range(frames):
        score = float(np.exp(-(((i - 170) / 5.0) ** 2)))  # (1,) bump near the end
        results = FrameResults(
            apex_score=score,
            apex_threshold=0.4,
            calibrating=False,
            latency_ms={"align": 8.0, "features": 3.0, "spot": 1.0},
        )
        t_ns = i * 33_333_333
        state.observe(Frame(i, t_ns, i / 30, np.zeros((1, 1, 3), np.uint8)), results)
    state.write(expression(emotion="positive", confidence=0.81))
    state.write(expression(kind="macro", emotion="negative", confidence=0.66))
    return state


def test_state_keeps_the_trace_in_order_and_the_rates():
    state = HudState(trace_len=10)
    for i in range(25):
        state.observe(
            Frame(i, i * 50_000_000, None, np.zeros((1, 1, 3), np.uint8)),
            FrameResults(apex_score=float(i), latency_ms={"align": 10.0}),
        )
    snap = state.snapshot()
    np.testing.assert_array_equal(snap.scores, np.arange(15, 25, dtype=np.float32))
    assert np.isnan(snap.thresholds).all()  # no spotter threshold given
    assert snap.capture_fps == pytest.approx(20.0)  # one frame every 50 ms
    assert snap.latency_ms == {"align": pytest.approx(10.0)}


def test_state_lists_the_last_events_newest_last():
    state = HudState(events_shown=2)
    for confidence in (0.5, 0.6, 0.7):
        state.write(expression(confidence=confidence))
    assert [e.confidence for e in state.snapshot().events] == [0.6, 0.7]


def test_draw_hud_puts_each_part_in_its_place(face_frame):
    image, results = face_frame
    drawn = draw_hud(image.copy(), results, fed_state(), HudOptions(recording=True))
    bgr = drawn.astype(int)
    # Face box: magenta, around the landmarks.
    magenta = (bgr[..., 2] > 200) & (bgr[..., 1] < 60) & (bgr[..., 0] > 200)
    ys, xs = np.nonzero(magenta)
    landmarks = results.aligned.landmarks_px
    assert xs.min() < landmarks[:, 0].min() and xs.max() > landmarks[:, 0].max()
    assert ys.min() < landmarks[:, 1].min() and ys.max() > landmarks[:, 1].max()
    # Stats panel: darker than the frame there, with white text.
    panel, under = bgr[:70, :260], image[:70, :260].astype(int)
    assert panel.mean() < 0.7 * under.mean() and (panel.min(axis=2) > 220).sum() > 150
    # Trace: the threshold (red) spans the width; the score bump rises above it at the right.
    trace = bgr[480 - 76 : 480 - 20]
    red = (trace[..., 2] > 200) & (trace[..., 1] < 60) & (trace[..., 0] < 60)
    assert red.any(axis=0)[10:-10].mean() > 0.9
    white_rows = np.nonzero((trace.min(axis=2) > 200).any(axis=1))[0]
    red_row = np.nonzero(red.any(axis=1))[0].mean()
    assert white_rows.min() < red_row - 5  # the bump's top is above the threshold line
    # Events list (top right), both emotions' colours; recording dot in the corner.
    events = bgr[30:70, 440:]
    assert ((events[..., 1] > 200) & (events[..., 2] < 120)).sum() > 20  # positive: green
    corner = bgr[8:25, 640 - 66 : 640 - 50]
    assert ((corner[..., 2] > 200) & (corner[..., 1] < 60)).sum() > 50  # the red dot


@pytest.mark.parametrize(
    "options, changed",
    [
        (HudOptions(hud=False, landmarks=False, keys=False), False),  # everything off: untouched
        (HudOptions(hud=False, landmarks=True, keys=False), True),  # landmarks only
        (HudOptions(hud=True, landmarks=False, keys=False), True),  # HUD only
        (HudOptions(hud=False, landmarks=False, keys=True), True),  # the key list alone
    ],
)
def test_toggles_decide_what_is_drawn(face_frame, options, changed):
    image, results = face_frame
    drawn = draw_hud(image.copy(), results, fed_state(20), options)
    assert (not np.array_equal(drawn, image)) == changed


def test_landmarks_toggle_removes_the_roi_squares(face_frame):
    image, results = face_frame
    state = fed_state(20)
    with_rois = draw_hud(image.copy(), results, state, HudOptions()).astype(int)
    without = draw_hud(image.copy(), results, state, HudOptions(landmarks=False)).astype(int)

    def yellow(bgr):  # the ROI squares' colour
        return ((bgr[..., 0] < 60) & (bgr[..., 1] > 180) & (bgr[..., 2] > 200)).sum()

    assert yellow(with_rois) > 200 and yellow(without) < 0.05 * yellow(with_rois)


def test_no_face_and_empty_state_still_draw():
    image = np.full((240, 320, 3), 90, np.uint8)  # a smaller frame: panels clip, no error
    drawn = draw_hud(image.copy(), FrameResults(), HudState(), HudOptions(privacy="unavailable"))
    assert not np.array_equal(drawn, image)


def test_face_box_contains_the_landmarks():
    canvas = np.zeros((100, 100, 3), np.uint8)
    points = np.array([[30, 40], [60, 70]], np.float32)
    draw_face_box(canvas, points)
    ys, xs = np.nonzero(canvas.any(axis=2))
    assert xs.min() < 30 and xs.max() > 60 and ys.min() < 40 and ys.max() > 70


def test_privacy_state_is_checked():
    with pytest.raises(ValueError, match="privacy"):
        HudOptions(privacy="maybe")


def test_the_hud_says_what_keeps_a_micro_expression_from_being_seen():
    from engines.context import FrameContext
    from stream.contracts import FrameResults
    from stream.ui.hud import face_state

    calm = FrameContext(0.3, False, 0.0, False, 10.0, False)
    talking = FrameContext(0.3, True, 0.2, True, 80.0, True)
    assert face_state(FrameResults(context=calm, spottable=True)) == "spottable"
    assert face_state(FrameResults(context=talking, spottable=False)) == (
        "not spottable: blink, speaking, head moving"
    )
    assert face_state(FrameResults(context=None, spottable=False)) == "no face"
