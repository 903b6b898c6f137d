"""Facial regions of interest in the aligned face, from the 68 dlib landmarks.

The aligned face is ``face_size`` × ``face_size`` (160 by default): the canonical shape below
is placed with the eye midpoint at (0.5, 0.35) of the box and 0.325 box widths between the
eye centres, which leaves room above the brows and keeps the chin inside.

Regions are named by the side of the IMAGE they sit on (``_l`` = image left), which is the
subject's right. Each is a fixed square patch (``patch`` px) centred on a landmark combination,
so flow windows always compare the same pixels. ``nose_bridge`` is the rigid anchor: its motion
is head motion and is subtracted from the others.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Mean dlib-68 shape in inter-ocular units, origin at the eye midpoint, eyes level.
# Procrustes mean of 37 faces (skimage's astronaut, ../shared/fixtures photos and every 40th
# frame of the fixture videos), each detected and landmarked with dlib.
CANONICAL_68 = np.array(
    [
        [-1.117, +0.002],
        [-1.106, +0.301],
        [-1.067, +0.601],
        [-1.007, +0.891],
        [-0.903, +1.160],
        [-0.742, +1.398],
        [-0.532, +1.594],
        [-0.291, +1.747],
        [-0.020, +1.796],
        [+0.252, +1.748],
        [+0.492, +1.594],
        [+0.703, +1.395],
        [+0.870, +1.158],
        [+0.978, +0.889],
        [+1.046, +0.602],
        [+1.096, +0.306],
        [+1.120, +0.006],
        [-0.911, -0.259],
        [-0.774, -0.393],
        [-0.580, -0.431],
        [-0.382, -0.401],
        [-0.199, -0.317],
        [+0.201, -0.318],
        [+0.389, -0.396],
        [+0.590, -0.427],
        [+0.783, -0.390],
        [+0.917, -0.253],
        [+0.002, -0.044],
        [-0.002, +0.154],
        [-0.005, +0.348],
        [-0.009, +0.548],
        [-0.225, +0.695],
        [-0.121, +0.730],
        [-0.010, +0.759],
        [+0.103, +0.732],
        [+0.208, +0.698],
        [-0.692, -0.005],
        [-0.570, -0.071],
        [-0.424, -0.066],
        [-0.299, +0.028],
        [-0.434, +0.059],
        [-0.582, +0.055],
        [+0.301, +0.027],
        [+0.424, -0.067],
        [+0.570, -0.070],
        [+0.690, -0.004],
        [+0.581, +0.056],
        [+0.435, +0.058],
        [-0.410, +1.098],
        [-0.267, +0.999],
        [-0.119, +0.946],
        [-0.010, +0.977],
        [+0.098, +0.948],
        [+0.245, +1.004],
        [+0.384, +1.100],
        [+0.248, +1.247],
        [+0.104, +1.315],
        [-0.014, +1.326],
        [-0.132, +1.314],
        [-0.276, +1.245],
        [-0.345, +1.099],
        [-0.119, +1.061],
        [-0.011, +1.070],
        [+0.098, +1.061],
        [+0.316, +1.100],
        [+0.097, +1.150],
        [-0.013, +1.165],
        [-0.124, +1.152],
    ],
    dtype=np.float32,
)  # (68, 2)

EYE_MID = (0.5, 0.35)  # eye midpoint in the aligned box, as fractions of its side
IOD = 0.325  # inter-ocular distance as a fraction of the side

# Landmarks that move least with expressions: eye corners and the nose ridge. The similarity
# transform to the canonical face is fitted on these only.
STABLE_POINTS = (36, 39, 42, 45, 27, 28, 29, 30)


@dataclass(frozen=True)
class Roi:
    """A region: the landmarks whose mean is its centre, and an offset in inter-ocular units."""

    name: str
    landmarks: tuple[int, ...]
    offset: tuple[float, float] = (0.0, 0.0)


ROIS = (
    Roi("brow_l_outer", (17, 18), (0.0, -0.12)),
    Roi("brow_l_inner", (20, 21), (0.0, -0.12)),
    Roi("brow_r_inner", (22, 23), (0.0, -0.12)),
    Roi("brow_r_outer", (25, 26), (0.0, -0.12)),
    Roi("eye_l_outer", (36,), (-0.15, +0.05)),
    Roi("eye_r_outer", (45,), (+0.15, +0.05)),
    Roi("nose_l", (31,), (-0.12, -0.10)),
    Roi("nose_r", (35,), (+0.12, -0.10)),
    Roi("nasolabial_l", (31, 48), (-0.22, -0.05)),
    Roi("nasolabial_r", (35, 54), (+0.22, -0.05)),
    Roi("mouth_l", (48,), (0.0, 0.0)),
    Roi("mouth_r", (54,), (0.0, 0.0)),
    Roi("chin", (57, 8), (0.0, 0.0)),
    Roi("nose_bridge", (27, 28), (0.0, 0.0)),  # anchor: head motion
)
ROI_NAMES = tuple(roi.name for roi in ROIS)
ANCHOR = ROI_NAMES.index("nose_bridge")


def canonical_landmarks(face_size: int = 160) -> np.ndarray:
    """The canonical 68 landmarks in aligned-face pixels, (68, 2) float32."""
    scale = IOD * face_size
    origin = np.array(EYE_MID, np.float32) * face_size
    return CANONICAL_68 * scale + origin  # (68, 2)


def _centre_weights() -> np.ndarray:
    """(R, 68) averaging weights: ROI centres = weights @ landmarks (+ offsets)."""
    weights = np.zeros((len(ROIS), 68), np.float32)
    for i, roi in enumerate(ROIS):
        weights[i, list(roi.landmarks)] = 1.0 / len(roi.landmarks)
    return weights


_WEIGHTS = _centre_weights()  # (R, 68)
_OFFSETS = np.array([roi.offset for roi in ROIS], np.float32)  # (R, 2) in inter-ocular units


def roi_centres(landmarks: np.ndarray, face_size: int = 160) -> np.ndarray:
    """Centres of every ROI, (R, 2) float32, from aligned-face landmarks (68, 2)."""
    return _WEIGHTS @ landmarks + _OFFSETS * (IOD * face_size)  # (R, 2)


def roi_corners(landmarks: np.ndarray, patch: int, face_size: int = 160) -> np.ndarray:
    """Top-left (x, y) of each ROI's square patch, (R, 2) int32, kept inside the face box."""
    corners = np.rint(roi_centres(landmarks, face_size) - patch / 2).astype(np.int32)
    return np.clip(corners, 0, face_size - patch)  # (R, 2)
