"""Privacy stickers: size, eyes never covered, tracking under head motion, bad input."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from stream.contracts import AlignedFace
from stream.errors import MexliveError
from stream.face.align import FaceTracker, apply_transform, fit_similarity
from stream.face.rois import IOD, STABLE_POINTS, canonical_landmarks
from stream.privacy.stickers import (
    DESIGNS,
    SOLID_BGR,
    STICKER_REGIONS,
    Sticker,
    StickerGeometry,
    StickerPlacer,
    apply_sticker,
    place_sticker,
)
from stream.synthetic.animator import FaceAnimator, SyntheticConfig


@pytest.fixture(scope="module")
def still_face() -> tuple[np.ndarray, np.ndarray]:
    """A neutral synthetic frame (480, 640, 3) and its true landmarks (68, 2)."""
    animator = FaceAnimator(
        SyntheticConfig(seed=2, head_motion=False, noise_sigma=0.0, light_drift=False)
    )
    return animator.render(0), animator.landmarks_at(0)


def warp_face(image, landmarks, angle_deg, scale, shift):
    """The frame and its landmarks under a similarity about the face centre (head motion)."""
    centre = tuple(float(v) for v in landmarks.mean(0))
    matrix = cv2.getRotationMatrix2D(centre, angle_deg, scale)
    matrix[:, 2] += shift
    warped = cv2.warpAffine(
        image, matrix, image.shape[1::-1], flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
    )
    return warped, apply_transform(matrix.astype(np.float32), landmarks)


def drawn(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """(H, W) bool: the pixels the sticker changed."""
    return np.any(before != after, axis=2)


@pytest.mark.parametrize("region", STICKER_REGIONS)
def test_size_is_a_fifth_of_the_face_width_and_at_most_4_percent(region):
    landmarks = canonical_landmarks()
    placement = place_sticker(landmarks, region)
    face_width = np.linalg.norm(landmarks[16] - landmarks[0])
    assert placement.diameter <= 0.2 * face_width + 1e-6
    assert placement.diameter >= 0.15 * face_width  # the area cap trims it only a little
    assert placement.area_fraction <= 0.04 + 1e-9


@pytest.mark.parametrize("seed", range(5))  # jittered face shapes: expressions, other people
def test_disk_never_reaches_an_eye(seed):
    rng = np.random.default_rng(seed)
    landmarks = canonical_landmarks() + rng.normal(0, 2.0, (68, 2)).astype(np.float32)
    margin = StickerGeometry().eye_margin_iod * IOD * 160
    for region in STICKER_REGIONS:
        placement = place_sticker(landmarks, region)
        for eye in (slice(36, 42), slice(42, 48)):
            outline = landmarks[eye].reshape(-1, 1, 2)
            centre = tuple(float(v) for v in placement.centre)
            distance = -cv2.pointPolygonTest(outline, centre, True)  # > 0 outside
            assert distance >= placement.diameter / 2 + margin - 0.3, region


@pytest.mark.parametrize("design", DESIGNS)
def test_drawn_pixels_never_touch_the_eyes(still_face, design):
    image, truth = still_face
    warped, landmarks = warp_face(image, truth, 8.0, 1.1, (20, -10))
    aligned = FaceTracker().update(warped, 0, 0, 0.0)
    assert aligned.ok
    eyes = np.zeros(warped.shape[:2], np.uint8)
    for eye in (slice(36, 42), slice(42, 48)):
        cv2.fillPoly(eyes, [np.rint(landmarks[eye]).astype(np.int32)], 1)
    for region in STICKER_REGIONS:
        out = apply_sticker(warped.copy(), aligned, Sticker.design(design), region)
        changed = np.any(out != warped, axis=2)
        assert changed.any(), region
        assert not np.any(changed & (eyes > 0)), region


def test_sticker_follows_the_face_through_head_motion(still_face):
    """Rotation ±10°, scale ±12 %, shifts of ±35 px: in the face's own frame (a similarity
    fitted on the TRUE landmarks) the sticker's centre stays put."""
    image, truth = still_face
    tracker, placer = FaceTracker(), StickerPlacer(Sticker.design("solid"), "brow_r_outer")
    canonical = canonical_landmarks()[list(STABLE_POINTS)]
    centres, diameters = [], []
    for i in range(45):
        phase = 2 * np.pi * i / 45
        shift = (35 * np.sin(phase), 20 * np.sin(2 * phase))
        frame, landmarks = warp_face(
            image, truth, 10 * np.sin(phase), 1 + 0.12 * np.cos(phase), shift
        )
        aligned = tracker.update(frame, i, round(i / 30 * 1e9), i / 30)
        before = frame.copy()
        assert placer.apply(frame, aligned)
        ys, xs = np.nonzero(drawn(before, frame))
        to_face = fit_similarity(landmarks[list(STABLE_POINTS)], canonical)
        centres.append(apply_transform(to_face, np.array([[xs.mean(), ys.mean()]]))[0])
        scale = np.hypot(*to_face[:, 0])
        diameters.append(2 * np.sqrt(len(xs) / np.pi) * scale)  # in aligned-face px
    centres = np.array(centres)  # (N, 2) in aligned-face px (160 px face)
    assert np.abs(centres - centres.mean(0)).max() < 1.5  # < 0.03 inter-ocular distances
    assert np.ptp(diameters) < 2.0  # scaled with the face
    own_shape = apply_transform(fit_similarity(truth[list(STABLE_POINTS)], canonical), truth)
    expected = place_sticker(own_shape, "brow_r_outer").centre  # this person's region
    assert np.linalg.norm(centres.mean(0) - expected) < 1.5


def test_no_face_no_sticker():
    blank = np.full((240, 320, 3), 90, np.uint8)
    aligned = FaceTracker().update(blank, 0, 0, 0.0)
    assert not aligned.ok
    placer = StickerPlacer(Sticker.design("solid"), "chin")
    assert placer.apply(blank, aligned) is False and placer.last is None
    assert np.all(blank == 90)
    assert apply_sticker(blank, None, Sticker.design("solid"), "chin") is blank
    assert np.all(blank == 90)


def test_raw_landmarks_place_the_same_sticker(still_face):
    image, truth = still_face
    aligned = FaceTracker().update(image, 0, 0, 0.0)
    by_face = apply_sticker(image.copy(), aligned, Sticker.design("solid"), "nose_l")
    by_points = apply_sticker(image.copy(), truth, Sticker.design("solid"), "nose_l")
    a, b = drawn(image, by_face), drawn(image, by_points)
    assert (a & b).sum() / (a | b).sum() > 0.7  # tracked vs true landmarks: same spot


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "cannot load sticker"),  # no such file
        (b"not an image at all", "cannot load sticker"),  # a file OpenCV cannot decode
    ],
)
def test_sticker_file_that_does_not_load_is_a_clear_error(tmp_path, content, message):
    path = tmp_path / "sticker.png"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(MexliveError, match=message):
        Sticker.from_file(path)


def test_sticker_file_keeps_its_transparency(tmp_path, still_face):
    rgba = np.zeros((40, 40, 4), np.uint8)
    rgba[:, :20] = (*SOLID_BGR, 255)  # left half opaque orange, right half transparent
    cv2.imwrite(str(tmp_path / "half.png"), rgba)
    sticker = Sticker.from_file(tmp_path / "half.png")
    assert sticker.bgra[20, 5, 3] == 255 and sticker.bgra[20, 35, 3] == 0
    image, truth = still_face
    out = apply_sticker(image.copy(), truth, sticker, "chin")
    changed = np.argwhere(np.any(out != image, axis=2))  # (K, 2) rows, cols
    full = np.argwhere(
        np.any(apply_sticker(image.copy(), truth, Sticker.design("solid"), "chin") != image, axis=2)
    )
    assert 0.3 < len(changed) / len(full) < 0.7  # about half of the disk drawn


def test_unknown_design_or_region_is_refused():
    with pytest.raises(MexliveError, match="design"):
        Sticker.design("glitter")
    with pytest.raises(MexliveError, match="region"):
        StickerPlacer(Sticker.design("solid"), "nose_bridge")


def test_aligned_face_without_transform_draws_nothing():
    image = np.zeros((100, 100, 3), np.uint8)
    face = AlignedFace(0, 0, None, canonical_landmarks(), True, None, None)
    assert StickerPlacer(Sticker.design("solid"), "chin").apply(image, face) is False
    assert not image.any()
