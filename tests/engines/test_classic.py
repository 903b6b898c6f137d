"""engines.classic and engines.motion on hand-made feature rows of the real layout.

A region's shift is drawn as it would be measured: the window shift d(t) (a raised cosine over
onset → offset, ``height`` px at the apex) and the onset shift d(t) − d(t − 133 ms), on top of
Gaussian noise of 0.1 px in every region.
"""

from __future__ import annotations

import numpy as np
import pytest

from engines.classic import ClassicSpotter, classic_spot, classic_trace
from engines.inputs import SpotterInput, input_names, spotter_inputs
from engines.motion import MotionNormaliser, motion_names, normalise_clip
from stream.face.features import FACE_ROIS, feature_names

NAMES = feature_names()
COL = {name: i for i, name in enumerate(NAMES)}


def rows(fps: float, seconds: float, bumps=(), noise=0.1, seed=0, roi_noise=None) -> np.ndarray:
    """(L, F) feature rows: noise everywhere, and each bump (roi, onset_s, offset_s, height,
    echo) as a window shift; ``echo`` draws only the window shift with no onset motion (the
    face still while its 1 s reference moves)."""
    n = round(seconds * fps)
    rng = np.random.default_rng(seed)
    values = np.zeros((n, len(NAMES)), np.float32)  # (L, F)
    for roi in FACE_ROIS:
        sigma = (roi_noise or {}).get(roi, noise)
        for ch in ("mean_dx_on", "mean_dy_on", "mean_dx_win", "mean_dy_win"):
            values[:, COL[f"{roi}.{ch}"]] = rng.normal(0, sigma, n)
        values[:, COL[f"{roi}.mag_on"]] = np.abs(rng.normal(0.5, sigma, n))
        values[:, COL[f"{roi}.app_abs"]] = np.abs(rng.normal(0.05, 0.01, n))
    for ch in ("head_dx_on", "head_dy_on"):
        values[:, COL[ch]] = rng.normal(0, 0.1, n)
    t = np.arange(n) / fps
    lag = round(0.133 * fps)
    for roi, onset_s, offset_s, height, *echo in bumps:
        inside = (t >= onset_s) & (t <= offset_s)
        phase = 2 * np.pi * (t - onset_s) / (offset_s - onset_s)
        d = np.where(inside, height * 0.5 * (1 - np.cos(phase)), 0.0)  # (L,)
        values[:, COL[f"{roi}.mean_dy_win"]] += d
        if not (echo and echo[0]):
            onset = d - np.concatenate([np.zeros(lag), d[:-lag]])
            values[:, COL[f"{roi}.mean_dy_on"]] += onset
            values[:, COL[f"{roi}.mag_on"]] += np.abs(onset)
    return values


def spot(values: np.ndarray, fps: float):
    return classic_spot(values, np.ones(len(values), bool), fps, NAMES)


@pytest.mark.parametrize("fps", [25.0, 30.0, 60.0, 200.0])  # frame rates of the world
def test_a_bump_of_known_size_is_found_once(fps):
    bumps = [("brow_l_inner", 6.0, 6.3, 1.0), ("brow_r_inner", 6.0, 6.3, 1.0)]
    events = spot(rows(fps, 12.0, bumps), fps)
    assert len(events) == 1
    (event,) = events
    assert event.kind == "micro"
    onset, offset = 6.0 * fps, 6.3 * fps
    overlap = min(offset, event.offset_seq) - max(onset, event.onset_seq) + 1
    union = max(offset, event.offset_seq) - min(onset, event.onset_seq) + 1
    assert overlap / union >= 0.5, (event.onset_seq, event.offset_seq, onset, offset)
    assert abs(event.apex_seq - 6.15 * fps) <= 0.1 * fps


def test_noise_alone_finds_nothing():
    for seed in range(3):
        assert spot(rows(30.0, 60.0, seed=seed), 30.0) == []


def test_a_long_movement_is_macro():
    bumps = [("mouth_l", 5.0, 7.0, 3.0), ("mouth_r", 5.0, 7.0, 3.0)]
    kinds = [e.kind for e in spot(rows(30.0, 12.0, bumps), 30.0)]
    assert kinds == ["macro"]


def test_the_echo_of_the_window_reference_is_not_an_event():
    # The window shift alone, with no motion over the onset baseline: the face was still.
    bumps = [("brow_l_inner", 6.0, 6.3, 1.0, True), ("brow_r_inner", 6.0, 6.3, 1.0, True)]
    assert spot(rows(30.0, 12.0, bumps), 30.0) == []


def test_a_noisy_region_raises_its_own_floor_only():
    # The mouth "talks" (1 px noise); the same 1 px shift scores far lower there than on a brow.
    talking = {"mouth_l": 1.0, "mouth_r": 1.0}
    bumps = [("brow_l_outer", 6.0, 6.3, 1.0), ("mouth_l", 8.0, 8.3, 1.0)]
    values = rows(30.0, 10.0, bumps, roi_noise=talking)
    _, roi_z = classic_trace(values, np.ones(len(values), bool), np.arange(300) / 30.0, NAMES)
    brow, mouth = FACE_ROIS.index("brow_l_outer"), FACE_ROIS.index("mouth_l")
    assert roi_z[180:195, brow].max() > 5 * roi_z[240:255, mouth].max()


def test_invalid_rows_give_zeros_and_nan_scores():
    values = rows(30.0, 4.0)
    valid = np.ones(len(values), bool)
    valid[50:60] = False
    score, _ = classic_trace(values, valid, np.arange(len(values)) / 30.0, NAMES)
    assert np.isnan(score[50:60]).all() and np.isfinite(score[60:]).all()
    z = normalise_clip(values, valid, np.arange(len(values)) / 30.0, NAMES)
    assert z.shape == (len(values), len(motion_names(NAMES))) and not z[50:60].any()


def test_streaming_equals_the_clip_functions():
    values = rows(30.0, 5.0, [("chin", 2.0, 2.3, 1.5)])
    valid = np.ones(len(values), bool)
    t_s = np.arange(len(values)) / 30.0
    spotter, inputs = ClassicSpotter(NAMES), SpotterInput(NAMES)
    one = np.array([spotter.step(values[i], t_s[i], True) for i in range(len(values))])
    assert np.array_equal(one, classic_trace(values, valid, t_s, NAMES)[0])
    each = np.stack([inputs.update(values[i], t_s[i], True).copy() for i in range(len(values))])
    whole = spotter_inputs(values, valid, t_s, NAMES)
    assert whole.shape == (len(values), len(input_names(NAMES)))
    assert np.array_equal(each, whole)
    assert np.allclose(whole[10:, -1], 1.0)  # 30 fps is 1.0 on the frame-rate channel


def test_a_layout_without_the_motion_channels_is_refused():
    with pytest.raises(ValueError, match="mean_dx_on"):
        MotionNormaliser([n for n in NAMES if "mean_" not in n])
