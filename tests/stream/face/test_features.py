"""FeatureExtractor: micro-expressions show in the right ROIs, head motion is removed, gaps
reset, nothing is invented, and the same input gives the same numbers."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from stream.contracts import AlignedFace
from stream.face.align import FaceTracker
from stream.face.features import FACE_ROIS, FeatureExtractor, feature_names
from stream.face.rois import ROI_NAMES, ROIS, canonical_landmarks, roi_centres
from stream.synthetic.animator import FaceAnimator, SyntheticConfig

FPS = 30.0
MAG_ON = [feature_names().index(f"{roi}.mag_on") for roi in FACE_ROIS]


def extract(animator: FaceAnimator, n_frames: int) -> tuple[np.ndarray, np.ndarray]:
    tracker, extractor = FaceTracker(), FeatureExtractor()
    rows = []
    for i in range(n_frames):
        aligned = tracker.update(animator.render(i), i, 0, i / FPS)
        rows.append(extractor.update(aligned))
    return np.stack([r.values for r in rows]), np.array([r.valid for r in rows])


@pytest.fixture(scope="module")
def micro_run():
    config = SyntheticConfig(
        seed=11,
        fps=FPS,
        head_motion=False,
        noise_sigma=1.0,
        light_drift=False,
        micro_per_min=15.0,
        macro_per_min=0.0,
        blinks_per_min=0.0,
    )
    animator = FaceAnimator(config)
    n = int(24 * FPS)
    values, valid = extract(animator, n)
    events = [e for e in animator.events_between(0, n) if e.kind == "micro" and e.offset < n]
    return animator, values, valid, events


def roi_distance_to_moved(event) -> np.ndarray:
    """Distance (aligned px) from each facial ROI centre to the nearest moved landmark."""
    canonical = canonical_landmarks(160)
    centres = roi_centres(canonical)[[ROI_NAMES.index(r) for r in FACE_ROIS]]  # (R-1, 2)
    moved = canonical[list(event.landmarks)]  # (M, 2)
    return np.linalg.norm(centres[:, None] - moved[None], axis=2).min(1)  # (R-1,)


@pytest.mark.slow
def test_micro_expressions_show_in_the_right_rois(micro_run):
    _, values, valid, events = micro_run
    assert len(events) >= 3
    for event in events:
        window = slice(event.apex - 1, event.apex + 2)
        assert valid[window].all()
        response = values[window][:, MAG_ON].max(0)  # (R-1,) onset-baseline magnitude
        distance = roi_distance_to_moved(event)
        strongest = int(np.argmax(response))
        assert distance[strongest] < 16, (event, FACE_ROIS[strongest])  # near what moved
        far = distance > 40
        if far.any():  # regions far from every moved landmark stay much quieter
            assert response[far].max() < 0.5 * response.max(), (event, response)


@pytest.mark.slow
def test_quiet_lead_in_has_no_motion(micro_run):
    animator, values, valid, _ = micro_run
    lead_in = slice(int(0.5 * FPS), int(animator.config.lead_in_s * FPS))
    assert valid[lead_in].all()
    assert values[lead_in][:, MAG_ON].max() < 0.3  # px: sensor noise (σ 1) only


def aligned_pair(shift_px: float):
    """A real aligned face and the same face shifted right by shift_px (as head motion)."""
    animator = FaceAnimator(
        SyntheticConfig(seed=3, head_motion=False, noise_sigma=0.0, light_drift=False)
    )
    face = FaceTracker().update(animator.render(0), 0, 0, 0.0)
    shifted = cv2.warpAffine(
        face.face,
        np.float32([[1, 0, shift_px], [0, 1, 0]]),
        (160, 160),
        borderMode=cv2.BORDER_REPLICATE,
    )
    make = lambda img, seq: AlignedFace(  # noqa: E731
        seq,
        0,
        img,
        face.landmarks.copy(),
        True,
        transform=face.transform,
        t_s=seq / FPS,
    )
    return make(face.face.copy(), 0), make(shifted, 4)


def test_head_motion_is_removed_by_the_anchor():
    still, moved = aligned_pair(0.6)
    extractor = FeatureExtractor()
    assert not extractor.update(still).valid  # no reference yet
    row = extractor.update(moved)  # 133 ms later: the onset reference is the still face
    assert row.valid
    names = feature_names()
    head_dx = row.values[names.index("head_dx_on")]
    assert abs(abs(head_dx) - 0.6) < 0.1  # the anchor saw the whole-face shift
    dx = row.values[[names.index(f"{roi}.dx_on") for roi in FACE_ROIS]]
    assert np.abs(dx).max() < 0.15  # and it is gone from every facial region


def test_gap_and_lost_face_reset_and_invent_nothing():
    still, moved = aligned_pair(0.0)
    extractor = FeatureExtractor()
    extractor.update(still)
    assert extractor.update(moved).valid
    moved.seq, moved.t_s = 8, 8 / FPS
    after_gap = extractor.update(moved, gap=True)
    assert not after_gap.valid and not after_gap.values.any()
    lost = AlignedFace(9, 0, None, None, False, reason="no_face", t_s=9 / FPS)
    row = extractor.update(lost)
    assert not row.valid and not row.values.any() and extractor.resets == 2


def test_feature_layout():
    names = feature_names()
    assert len(names) == len(set(names)) == FeatureExtractor().n_features
    assert len(FACE_ROIS) == len(ROIS) - 1 and "nose_bridge" not in FACE_ROIS


@pytest.mark.slow
def test_deterministic():
    config = SyntheticConfig(seed=5)
    a = extract(FaceAnimator(config), 40)
    b = extract(FaceAnimator(config), 40)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
