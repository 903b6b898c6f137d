"""Onset→apex flow stacks of the aligned face: the recognizer's input
(engines/models/recognizer.py).

For an interval (onset, apex) the stack holds ``steps`` dense flow fields, each from the onset
face to a face between onset and apex (evenly spaced, the last one the apex), so it shows how
the motion builds up. Flow is ``stream.face.flow.dense_flow`` (the same Numba pyramidal
Lucas–Kanade as the ROI features) on the whole aligned grey face; the nose bridge's median
flow is subtracted (head motion the alignment left behind), then each field is area-averaged
down to ``size`` × ``size``. Values stay in aligned-face pixels (``face_size`` px face); the
model normalises them.

The ROI prior is a (size, size) mask: the union of the facial ROI squares of
``stream/face/rois.py`` placed on the onset landmarks (the nose-bridge anchor excluded), area-
averaged like the flow, so a cell half covered by an ROI holds 0.5.

Used twice, identically: by ``stream/datasets/stacks.py`` to build the training stacks, and by
``stream/live/recognition.py`` for a live event (cost per event, not per frame: ``steps`` flows).

Example:
    stack = flow_stack(faces, landmarks_onset, StackConfig())   # faces: onset first
    stack.flow.shape, stack.mask.shape                          # (2, 6, 48, 48), (48, 48)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from stream.face.flow import FlowConfig, dense_flow
from stream.face.rois import ANCHOR, roi_corners


@dataclass(frozen=True)
class StackConfig:
    """Shape of a flow stack.

    Attributes:
        steps: flow fields per stack (T).
        size: side of each downsampled field (S).
        face_size: side of the aligned face the flow is computed on.
        roi_patch: side of each ROI square in the prior mask, aligned-face px.
    """

    steps: int = 6
    size: int = 32
    face_size: int = 160
    roi_patch: int = 24

    def __post_init__(self) -> None:
        if self.steps < 1 or self.size < 4 or self.size > self.face_size:
            raise ValueError(f"bad stack shape: {self}")


@dataclass(frozen=True)
class FlowStack:
    """flow: (2, T, S, S) float32 dx, dy in aligned-face px; mask: (S, S) float32 in 0..1;
    frames: the T source frame indices the fields end on."""

    flow: np.ndarray
    mask: np.ndarray
    frames: tuple[int, ...]


def step_frames(onset: int, apex: int, steps: int) -> list[int]:
    """The frames each field ends on: ``steps`` evenly spaced in (onset, apex], apex last.

    A short rise repeats frames (onset→apex of 2 frames with 6 steps: 1,1,1,2,2,2 past onset).
    """
    if apex <= onset:
        raise ValueError(f"apex {apex} must come after onset {onset}")
    span = apex - onset
    return [onset + max(1, round(k * span / steps)) for k in range(1, steps + 1)]


def roi_mask(landmarks: np.ndarray, config: StackConfig) -> np.ndarray:
    """(S, S) float32 union of the facial ROI squares on (68, 2) aligned landmarks."""
    full = np.zeros((config.face_size, config.face_size), np.float32)
    corners = roi_corners(landmarks, config.roi_patch, config.face_size)  # (R, 2)
    for i, (x, y) in enumerate(corners):
        if i != ANCHOR:
            full[y : y + config.roi_patch, x : x + config.roi_patch] = 1.0
    return cv2.resize(full, (config.size, config.size), interpolation=cv2.INTER_AREA)


def _anchor_box(landmarks: np.ndarray, config: StackConfig) -> tuple[slice, slice]:
    x, y = roi_corners(landmarks, config.roi_patch, config.face_size)[ANCHOR]
    return slice(y, y + config.roi_patch), slice(x, x + config.roi_patch)


def flow_stack(
    faces: Sequence[np.ndarray],
    landmarks: np.ndarray,
    config: StackConfig,
    frames: Sequence[int] | None = None,
    flow_config: FlowConfig | None = None,
) -> FlowStack:
    """The stack from the onset face ``faces[0]`` to each of ``faces[1:]``.

    Args:
        faces: 1 + T aligned grey faces, (face_size, face_size) uint8 or float32 0..1; the
            onset face first, then the face each field ends on.
        landmarks: (68, 2) aligned landmarks of the onset face (ROI mask, anchor box).
        frames: the frame indices of ``faces[1:]`` (recorded in the result).
    """
    if len(faces) != config.steps + 1:
        raise ValueError(f"{len(faces)} faces for {config.steps} steps (need steps + 1)")
    grey = [_unit(face, config.face_size) for face in faces]
    rows, cols = _anchor_box(landmarks, config)
    flow = np.empty((2, config.steps, config.size, config.size), np.float32)  # (2, T, S, S)
    for t, face in enumerate(grey[1:]):
        field = dense_flow(grey[0], face, flow_config or FlowConfig())  # (F, F, 2)
        field -= np.median(field[rows, cols].reshape(-1, 2), axis=0)  # head motion left over
        small = cv2.resize(field, (config.size, config.size), interpolation=cv2.INTER_AREA)
        flow[:, t] = small.transpose(2, 0, 1)  # (2, S, S)
    ends = tuple(frames) if frames is not None else tuple(range(1, config.steps + 1))
    return FlowStack(flow, roi_mask(landmarks, config), ends)


def _unit(face: np.ndarray, face_size: int) -> np.ndarray:
    if face.shape != (face_size, face_size):
        raise ValueError(f"face of shape {face.shape}, expected ({face_size}, {face_size})")
    if face.dtype == np.uint8:
        return face.astype(np.float32) * np.float32(1 / 255)
    return np.ascontiguousarray(face, np.float32)
