"""FaceTracker on real faces, and every kind of bad face input: status, invalid, no exception."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from stream.face.align import FaceTracker, apply_transform, fit_similarity
from stream.face.rois import ROI_NAMES, canonical_landmarks, roi_corners
from stream.face.smoothing import OneEuroConfig, OneEuroFilter


@pytest.fixture(scope="module")
def face_frames():
    """The first 60 frames of lp_d9.mp4 (a man with glasses, talking), BGR."""
    import av

    from tests.helpers import fixtures_root

    root = fixtures_root()
    if root is None:
        pytest.skip("face fixtures not found")
    with av.open(str(root / "videos" / "lp_d9.mp4")) as container:
        return [
            f.to_ndarray(format="bgr24")
            for _, f in zip(range(60), container.decode(video=0), strict=False)
        ]


def run(tracker: FaceTracker, frames: list[np.ndarray], start: int = 0):
    return [
        tracker.update(image, start + i, (start + i) * 33_333_333) for i, image in enumerate(frames)
    ]


def test_fit_similarity_recovers_a_known_transform():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, (10, 2)).astype(np.float32)
    angle, scale, shift = 0.3, 1.7, np.array([5.0, -3.0])
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    dst = src @ (scale * rot).T + shift
    matrix = fit_similarity(src, dst)
    np.testing.assert_allclose(apply_transform(matrix, src), dst, atol=1e-3)


def test_tracks_a_real_face_with_one_detection(face_frames):
    tracker = FaceTracker()
    faces = run(tracker, face_frames)
    assert all(face.ok for face in faces) and tracker.detections == 1
    assert faces[0].change == "face_found" and all(f.change is None for f in faces[1:])
    assert faces[0].face.shape == (160, 160) and faces[0].face.dtype == np.uint8
    # Aligned landmarks land near the canonical face (the stable points most of all).
    error = np.linalg.norm(faces[10].landmarks - canonical_landmarks(160), axis=1)
    assert np.median(error) < 6.0
    corners = roi_corners(faces[10].landmarks, 24)
    assert corners.shape == (len(ROI_NAMES), 2) and (corners >= 0).all() and (corners <= 136).all()


@pytest.mark.parametrize(
    "spoil, reason",
    [
        (lambda im: np.zeros_like(im), "too_dark"),  # lens cap on
        (lambda im: np.full_like(im, 128), "no_face"),  # an empty grey wall
        (lambda im: (im.astype(np.float32) * 0.06).astype(np.uint8), "too_dark"),  # very dark room
        (
            lambda im: np.clip(im.astype(np.float32) * 6 + 120, 0, 255).astype(np.uint8),
            "overexposed",
        ),  # blown-out exposure
        (
            lambda im: cv2.resize(cv2.resize(im, None, fx=0.15, fy=0.15), None, fx=1, fy=1),
            None,
        ),  # tiny face (< 60 px): too small or not found
    ],
)
def test_bad_frames_give_a_reason_not_an_exception(face_frames, spoil, reason):
    tracker = FaceTracker()
    good = run(tracker, face_frames[:5])
    assert all(face.ok for face in good)
    bad = run(tracker, [spoil(im) for im in face_frames[5:10]], start=5)
    assert not any(face.ok for face in bad)
    assert bad[0].change == "face_lost"
    assert all(face.face is None and face.landmarks is None for face in bad)
    if reason is not None:
        assert bad[-1].reason == reason
    else:
        assert bad[-1].reason in ("too_small", "no_face")
    back = run(tracker, face_frames[10:15], start=10)  # the face returns: found again
    assert back[0].ok and back[0].change == "face_found" and back[0].redetected


def test_face_half_out_of_frame(face_frames):
    tracker = FaceTracker()
    run(tracker, face_frames[:3])
    image = face_frames[3]
    shifted = np.zeros_like(image)
    shifted[:, : image.shape[1] - 300] = image[:, 300:]  # the face slides off the left edge
    face = tracker.update(shifted, 3, 100_000_000)
    assert not face.ok and face.reason in ("out_of_frame", "no_face", "drift")


def test_two_faces_track_the_larger_and_count_both(face_frames):
    image = face_frames[0]
    small = cv2.resize(image, None, fx=0.6, fy=0.6)
    canvas = np.zeros((image.shape[0], image.shape[1] + small.shape[1], 3), np.uint8)
    canvas[:, : image.shape[1]] = image
    canvas[: small.shape[0], image.shape[1] :] = small
    face = FaceTracker().update(canvas, 0, 0)
    assert face.ok and face.n_faces == 2
    assert face.landmarks_px[:, 0].max() < image.shape[1]  # the larger face, on the left


def test_one_euro_keeps_a_one_pixel_pulse_and_cuts_jitter():
    fps, rng = 30.0, np.random.default_rng(1)
    t = np.arange(300) / fps
    pulse = ((t >= 5.0) & (t < 5.2)).astype(np.float32)  # 1 px for 200 ms
    jitter = rng.normal(0, 0.3, t.size).astype(np.float32)
    filt = OneEuroFilter(OneEuroConfig())
    out = np.array(
        [
            filt(np.array([[p + j]], np.float32), ti)[0, 0]
            for p, j, ti in zip(pulse, jitter, t, strict=True)
        ]
    )
    still = slice(30, 140)
    assert out[still].std() < 0.7 * jitter[still].std()  # jitter reduced
    # the pulse's peak survives (measured against the jitter-free response)
    filt = OneEuroFilter(OneEuroConfig())
    clean = np.array(
        [filt(np.array([[p]], np.float32), ti)[0, 0] for p, ti in zip(pulse, t, strict=True)]
    )
    assert clean.max() > 0.7


def test_the_track_does_not_depend_on_when_it_started(face_frames):
    """A chunk of a long video starts its own tracker; within a second of frames it must
    place the landmarks where a tracker that has run from the start places them (a box
    geometry re-learnt at each detection kept two such tracks 2-10 px apart for minutes)."""
    early = run(FaceTracker(), face_frames)
    late = run(FaceTracker(), face_frames[20:], start=20)
    assert all(face.ok for face in early + late)
    agreed = [
        np.array_equal(a.landmarks_px, b.landmarks_px)
        for a, b in zip(early[50:], late[30:], strict=True)
    ]
    assert all(agreed), f"landmarks differ on {agreed.count(False)} of the last 10 frames"
