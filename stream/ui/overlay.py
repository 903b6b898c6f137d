"""Drawing on the analysed frame: landmarks, ROI boxes and their flow (the HUD:
stream/ui/hud.py)."""

from __future__ import annotations

import cv2
import numpy as np

from stream.contracts import AlignedFace
from stream.face.rois import ANCHOR, roi_corners

GREEN, YELLOW, CYAN, RED = (0, 220, 0), (0, 220, 255), (255, 220, 0), (0, 0, 255)


def draw_analysis(
    image: np.ndarray,
    aligned: AlignedFace | None,
    roi_flow: np.ndarray | None = None,
    patch: int = 24,
    face_size: int = 160,
    flow_gain: float = 8.0,
) -> np.ndarray:
    """Draw in place on a BGR frame: landmarks, ROI squares (warped back from the aligned face)
    and each ROI's pooled onset flow as an arrow ``flow_gain`` times its length.

    Args:
        roi_flow: (R-1, 2) pooled dx, dy per facial ROI in aligned-face px (anchor removed).
    """
    if aligned is None or not aligned.ok:
        reason = aligned.reason if aligned is not None else "no face"
        cv2.putText(image, f"face: {reason}", (10, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.6, RED, 2)
        return image
    for x, y in aligned.landmarks_px.astype(np.int32):
        cv2.circle(image, (int(x), int(y)), 1, GREEN, -1, cv2.LINE_AA)
    back = cv2.invertAffineTransform(aligned.transform)  # aligned face -> frame
    corners = roi_corners(aligned.landmarks, patch, face_size)  # (R, 2)
    square = np.array([[0, 0], [patch, 0], [patch, patch], [0, patch]], np.float32)
    face_roi = 0
    for i, corner in enumerate(corners):
        quad = (corner + square) @ back[:, :2].T + back[:, 2]  # (4, 2) in frame px
        colour = CYAN if i == ANCHOR else YELLOW
        cv2.polylines(image, [quad.astype(np.int32)], True, colour, 1, cv2.LINE_AA)
        if i == ANCHOR or roi_flow is None:
            continue
        centre = corner + patch / 2
        tip = centre + roi_flow[face_roi] * flow_gain
        start, end = (np.array([centre, tip]) @ back[:, :2].T + back[:, 2]).astype(np.int32)
        cv2.arrowedLine(
            image, tuple(map(int, start)), tuple(map(int, end)), RED, 1, cv2.LINE_AA, tipLength=0.3
        )
        face_roi += 1
    return image
