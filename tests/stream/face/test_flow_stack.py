"""Flow stacks: frame schedule, ROI mask, and the motion a stack records (head motion removed)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from stream.face.flow_stack import StackConfig, flow_stack, roi_mask, step_frames
from stream.face.rois import canonical_landmarks


@pytest.mark.parametrize(
    ("onset", "apex", "steps", "expected"),
    [
        (10, 16, 6, [11, 12, 13, 14, 15, 16]),  # one frame per step
        (10, 12, 6, [11, 11, 11, 11, 12, 12]),  # short rise: frames repeat, apex last
        (0, 60, 3, [20, 40, 60]),  # long rise: evenly spaced
    ],
)
def test_step_frames(onset, apex, steps, expected):
    assert step_frames(onset, apex, steps) == expected


def test_step_frames_needs_a_rise():
    with pytest.raises(ValueError, match="apex"):
        step_frames(5, 5, 4)


def test_roi_mask_covers_the_facial_rois_only():
    config = StackConfig(size=32)
    mask = roi_mask(canonical_landmarks(), config)
    assert mask.shape == (32, 32) and mask.dtype == np.float32
    assert mask.min() >= 0.0 and mask.max() <= 1.0
    assert mask[:3].max() == 0.0  # the top 15 px, above the brows: no ROI
    assert mask.max() == 1.0 and 0.1 < mask.mean() < 0.6


def _textured_face(rng: np.random.Generator, size: int = 160) -> np.ndarray:
    """Smooth random texture in 0..1: Lucas–Kanade needs gradients everywhere."""
    noise = rng.random((size // 4, size // 4)).astype(np.float32)
    return cv2.resize(noise, (size, size), interpolation=cv2.INTER_CUBIC)


def _moved(face: np.ndarray, dx: float, dy_below: float, y_from: int) -> np.ndarray:
    """The face with its content moved dx px right everywhere and dy_below px down below
    row y_from (a head shift plus a local facial motion)."""
    xs = np.arange(face.shape[0], dtype=np.float32)
    grid_x, grid_y = np.meshgrid(xs, xs)  # (S, S) each
    dy = np.where(grid_y > y_from, dy_below, 0.0).astype(np.float32)
    return cv2.remap(face, grid_x - dx, grid_y - dy, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)


def test_stack_measures_local_motion_and_removes_head_motion():
    onset = _textured_face(np.random.default_rng(0))
    faces = [onset] + [_moved(onset, 0.5, shift, 110) for shift in (0.4, 0.8, 1.2)]
    stack = flow_stack(faces, canonical_landmarks(), StackConfig(steps=3, size=32), [1, 2, 3])
    assert stack.flow.shape == (2, 3, 32, 32) and stack.frames == (1, 2, 3)
    # ref(x, y) ≈ cur(x + dx, y + dy): the lower face moved down on top of a 0.5 px head shift
    upper = stack.flow[:, :, 6:14, 8:24]  # (2, T, ...) brows and eyes: head motion only
    lower = stack.flow[:, :, 24:30, 8:24]  # below y = 110 px: the moving part
    assert np.abs(np.median(upper, axis=(2, 3))).max() < 0.15  # the head shift is removed
    np.testing.assert_allclose(np.median(lower[1], axis=(1, 2)), [0.4, 0.8, 1.2], atol=0.2)
    assert abs(np.median(lower[0])) < 0.15


def test_stack_rejects_wrong_inputs():
    config = StackConfig(steps=2, size=16)
    face = np.zeros((160, 160), np.uint8)
    with pytest.raises(ValueError, match="steps"):
        flow_stack([face, face], canonical_landmarks(), config)
    with pytest.raises(ValueError, match="shape"):
        flow_stack([face, face, np.zeros((80, 80), np.uint8)], canonical_landmarks(), config)
