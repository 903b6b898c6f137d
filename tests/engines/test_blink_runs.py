"""Blink lines decided once the eyes reopen: blinks yes, long closures no, a bouncing lid once."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from engines.blink_runs import BlinkRun, BlinkRuns
from engines.context import clip_context
from tests.helpers import FRAME_RATES, close_eyes, synthetic_clip


def closures(*spans: tuple[float, float]) -> Callable[[float, np.ndarray], None]:
    """Lids down (85 %) inside each (start_s, end_s) span."""
    return lambda t, lm: close_eyes(lm, 0.85 if any(a <= t < b for a, b in spans) else 0.0)


def lines(seconds: float, fps: float, *spans: tuple[float, float]) -> list[tuple[float, float]]:
    """(onset_s, offset_s) of the blink lines of a synthetic clip with these closures."""
    landmarks, t_s, valid = synthetic_clip(seconds, fps, closures(*spans))
    context = clip_context(landmarks, t_s, valid)
    runs = BlinkRuns()
    out: list[BlinkRun] = []
    for i, closed in enumerate(context.eyes_closed):
        out += runs.update(i, float(t_s[i]), bool(closed))
    out += runs.gap()
    return [(run.onset_s, run.offset_s) for run in out]


@pytest.mark.parametrize("fps", FRAME_RATES)
def test_a_200_ms_closure_is_one_blink_line_covering_it(fps):
    ((onset_s, offset_s),) = lines(2.5, fps, (1.0, 1.2))
    # The tracker's 30 ms smoothing: the run starts up to 30 ms late and ends 30 ms + a frame late.
    assert 1.0 - 1 / fps <= onset_s <= 1.03 + 1e-9
    assert 1.2 - 1 / fps - 1e-9 <= offset_s <= 1.24 + 1 / fps


@pytest.mark.parametrize("fps", FRAME_RATES)
def test_a_closure_longer_than_a_blink_is_no_line(fps):
    assert lines(4.0, fps, (1.0, 3.0)) == []  # eyes shut for 2 s
    assert lines(4.0, fps, (1.0, 1.75)) == []  # a 750 ms squint


@pytest.mark.parametrize("fps", [30.0, 60.0, 200.0])
def test_a_lid_that_reopens_for_a_moment_is_one_blink(fps):
    # 40 ms open between two closures: one blink whose lids bounced on the landmarks
    ((onset_s, offset_s),) = lines(2.5, fps, (1.0, 1.1), (1.14, 1.25))
    assert onset_s <= 1.03 + 1e-9 and offset_s >= 1.25 - 1 / fps - 1e-9


@pytest.mark.parametrize("fps", FRAME_RATES)
def test_two_blinks_300_ms_apart_are_two_lines(fps):
    assert len(lines(3.0, fps, (1.0, 1.15), (1.45, 1.6))) == 2


def test_a_line_comes_once_the_eyes_have_been_open_for_the_rejoin_time():
    runs = BlinkRuns()
    decided_at = [i for i in range(60) if runs.update(i, i / 30, 30 <= i < 35)]
    assert decided_at == [
        35 + 3
    ]  # reopened at frame 35 (1.167 s), open 100 ms at frame 38 (to 1 ns)


def test_a_face_lost_drops_a_closure_still_shut_and_keeps_one_that_reopened():
    runs = BlinkRuns()
    for i in range(40):
        runs.update(i, i / 30, i >= 30)
    assert runs.gap() == []  # its length is unknown: not a blink line
    for i in range(40, 80):
        runs.update(i, i / 30, 60 <= i < 65)
    assert runs.gap() == [] and BlinkRuns().gap() == []  # decided at frame 68 already
    runs = BlinkRuns()
    for i in range(66):
        runs.update(i, i / 30, 60 <= i < 65)  # reopened at 65, not yet decided
    assert [(run.onset, run.offset) for run in runs.gap()] == [(60, 64)]
