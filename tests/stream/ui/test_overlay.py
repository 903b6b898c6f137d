"""The analysis overlay draws where the face is: landmarks, ROI squares and flow arrows."""

from __future__ import annotations

import numpy as np

from stream.contracts import AlignedFace
from stream.face.align import FaceTracker
from stream.synthetic.animator import FaceAnimator, SyntheticConfig
from stream.ui.overlay import draw_analysis


def test_draws_landmarks_rois_and_flow_on_the_face():
    frame = FaceAnimator(SyntheticConfig(seed=2, noise_sigma=0.0)).render(0)
    aligned = FaceTracker().update(frame, 0, 0, 0.0)
    assert aligned.ok
    flow = np.tile(np.float32([[1.0, 0.0]]), (13, 1))  # every ROI moving right by 1 px
    drawn = draw_analysis(frame.copy(), aligned, flow)
    changed = np.any(drawn != frame, axis=2)  # (H, W) pixels the overlay touched
    x0, y0 = aligned.landmarks_px.min(0) - 30
    x1, y1 = aligned.landmarks_px.max(0) + 30
    inside = changed[int(y0) : int(y1), int(x0) : int(x1)].sum()
    assert inside > 500 and inside > 0.95 * changed.sum()  # drawn, and only around the face
    for x, y in aligned.landmarks_px[[8, 30, 36, 45, 48, 54]].astype(int):
        assert changed[y - 1 : y + 2, x - 1 : x + 2].any()  # a dot on each landmark


def test_no_face_says_why():
    frame = np.zeros((120, 160, 3), np.uint8)
    lost = AlignedFace(0, 0, None, None, False, reason="too_dark")
    assert draw_analysis(frame.copy(), lost).any()  # the reason is written on the frame
