"""Privacy stickers: a small patch on one facial region of the outgoing video (Tan et al.).

A sticker is placed in ALIGNED-FACE coordinates (``stream/face/rois.py``'s canonical face, the
space of ``AlignedFace.landmarks``) and warped back to the frame with the inverse of the
tracker's similarity, so it follows the head through motion and scales with the face.

Where: the centre of the chosen region (``stream/face/rois.py``) on the person's slowly averaged
landmarks (``StickerPlacer``), so that, like a sticker on the skin in front of a recognizer,
the region's own brief motion is hidden under it while the head moves it along. Size: a disk
of ``width_fraction`` (2/10) of the face width (jaw landmarks 0–16), capped at
``max_area_fraction`` (4 %) of the face area (the convex hull of the 68 landmarks, which leaves
out the forehead). It is pushed away from both eyes until it clears them by ``eye_margin_iod``:
it never covers an eye.

Designs (``Sticker.design``): ``solid`` (one flat colour), ``textured`` (band-limited colour
noise, like fabric or felt), ``pattern`` (a printed high-contrast checker and rings),
``translucent`` (the solid colour at 50 % opacity). ``Sticker.from_file`` loads a PNG (alpha
kept) or any image OpenCV reads.

Example:
    sticker = Sticker.design("textured")
    apply_sticker(frame_bgr, aligned, sticker, "brow_l_inner")      # in place
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from stream.contracts import AlignedFace
from stream.errors import MexliveError
from stream.face.rois import IOD, ROI_NAMES, roi_centres

DESIGNS = ("solid", "textured", "pattern", "translucent")
STICKER_REGIONS = tuple(n for n in ROI_NAMES if n != "nose_bridge")
EYES = (slice(36, 42), slice(42, 48))  # dlib eye outlines
JAW_ENDS = (0, 16)
SOLID_BGR = (40, 150, 235)  # a warm orange, far from skin and background greys


@dataclass(frozen=True)
class Sticker:
    """A square BGRA image (S, S, 4) uint8 whose alpha holds the disk and its opacity."""

    name: str
    bgra: np.ndarray

    @classmethod
    def design(cls, name: str, size: int = 64, seed: int = 0) -> Sticker:
        """One of ``DESIGNS``, rendered at ``size`` px (it is warped to the face's scale)."""
        if name not in DESIGNS:
            raise MexliveError(f"unknown sticker design {name!r}: one of {', '.join(DESIGNS)}")
        rng = np.random.default_rng(seed)
        bgr = np.empty((size, size, 3), np.uint8)  # (S, S, 3)
        bgr[:] = SOLID_BGR
        opacity = 0.5 if name == "translucent" else 1.0
        if name == "textured":
            noise = rng.normal(0.0, 1.0, (size // 4, size // 4, 3)).astype(np.float32)
            noise = cv2.resize(noise, (size, size), interpolation=cv2.INTER_CUBIC)  # (S, S, 3)
            bgr[:] = np.clip(np.asarray(SOLID_BGR) + 45.0 * noise, 0, 255).astype(np.uint8)
        elif name == "pattern":
            yy, xx = np.mgrid[0:size, 0:size] / size  # (S, S) each, 0..1
            checker = ((xx * 6).astype(int) + (yy * 6).astype(int)) % 2 == 0  # (S, S)
            rings = np.hypot(xx - 0.5, yy - 0.5) * 10 % 1 < 0.5
            bgr[checker ^ rings] = (20, 20, 20)
            bgr[~(checker ^ rings)] = (235, 235, 235)
        return cls(name, _with_disk_alpha(bgr, opacity))

    @classmethod
    def from_file(cls, path: str | Path) -> Sticker:
        """Load an image file as a sticker (its alpha, if any, inside the disk)."""
        if not Path(path).is_file():  # before OpenCV, which would print a warning of its own
            raise MexliveError(f"cannot load sticker {path}: no such file")
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if image is None or image.ndim not in (2, 3) or min(image.shape[:2]) < 4:
            raise MexliveError(f"cannot load sticker {path}: not a readable image")
        if image.dtype != np.uint8:
            raise MexliveError(f"cannot load sticker {path}: 8-bit images only")
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGRA)
        elif image.shape[2] == 3:
            image = cv2.cvtColor(image, cv2.COLOR_BGR2BGRA)
        side = min(image.shape[:2])
        square = cv2.resize(image, (side, side), interpolation=cv2.INTER_AREA)  # (S, S, 4)
        bgra = _with_disk_alpha(square[..., :3], 1.0)
        bgra[..., 3] = (bgra[..., 3].astype(np.uint16) * square[..., 3] // 255).astype(np.uint8)
        return cls(Path(path).stem, bgra)


def _with_disk_alpha(bgr: np.ndarray, opacity: float) -> np.ndarray:
    """(S, S, 4): the image with an anti-aliased disk of the given opacity as alpha."""
    size = bgr.shape[0]
    yy, xx = np.mgrid[0:size, 0:size] + 0.5  # (S, S) pixel centres
    edge = np.clip(size / 2 - np.hypot(xx - size / 2, yy - size / 2) + 0.5, 0.0, 1.0)
    alpha = np.rint(255 * opacity * edge).astype(np.uint8)  # (S, S)
    return np.dstack([bgr, alpha])


@dataclass(frozen=True)
class StickerGeometry:
    """Size and clearance of the sticker, relative to the face."""

    width_fraction: float = 0.2  # disk diameter / face width (jaw ends)
    max_area_fraction: float = 0.04  # disk area / face area (landmark hull) at most
    eye_margin_iod: float = 0.08  # clearance from each eye outline, inter-ocular distances
    face_size: int = 160


@dataclass(frozen=True)
class Placement:
    """Where the sticker lies in aligned-face px: disk centre (2,), diameter, and the share of
    the face area (landmark hull) it covers."""

    centre: np.ndarray
    diameter: float
    area_fraction: float


def place_sticker(
    landmarks: np.ndarray, region: str, geometry: StickerGeometry | None = None
) -> Placement:
    """The sticker's disk for ``region`` on aligned-face landmarks (68, 2), clear of the eyes."""
    geo = geometry or StickerGeometry()
    check_region(region)
    landmarks = np.asarray(landmarks, np.float32)
    face_width = float(np.linalg.norm(landmarks[JAW_ENDS[1]] - landmarks[JAW_ENDS[0]]))
    face_area = float(cv2.contourArea(cv2.convexHull(landmarks)))
    by_width = geo.width_fraction * face_width
    by_area = 2.0 * np.sqrt(geo.max_area_fraction * face_area / np.pi)
    diameter = min(by_width, by_area)
    centre = roi_centres(landmarks, geo.face_size)[ROI_NAMES.index(region)].astype(np.float64)
    clearance = diameter / 2 + geo.eye_margin_iod * IOD * geo.face_size
    for eye in EYES:
        centre = _clear_of(landmarks[eye], centre, clearance)
    area = np.pi * diameter**2 / 4
    return Placement(centre, diameter, area / max(face_area, 1e-6))


def check_region(region: str) -> None:
    if region not in STICKER_REGIONS:
        names = ", ".join(STICKER_REGIONS)
        raise MexliveError(f"unknown sticker region {region!r}: one of {names}")


def _clear_of(outline: np.ndarray, centre: np.ndarray, clearance: float) -> np.ndarray:
    """Move ``centre`` straight away from the outline's centre until it is at least
    ``clearance`` px outside the outline (6, 2)."""
    contour = outline.reshape(-1, 1, 2).astype(np.float32)
    middle = outline.mean(axis=0).astype(np.float64)
    away = centre - middle
    norm = float(np.linalg.norm(away))
    away = away / norm if norm > 1e-6 else np.array([0.0, -1.0])  # on the eye: go up
    for _ in range(64):  # converges in a few steps; bounded so it never spins
        inside = cv2.pointPolygonTest(contour, (float(centre[0]), float(centre[1])), True)
        missing = clearance + inside  # inside > 0 within the outline, < 0 outside
        if missing <= 0:
            break
        centre = centre + away * (missing + 0.25)
    return centre


def apply_sticker(
    image: np.ndarray,
    aligned: AlignedFace | np.ndarray | None,
    sticker: Sticker,
    region: str,
    anchor_landmarks: np.ndarray | None = None,
    geometry: StickerGeometry | None = None,
) -> np.ndarray:
    """Draw ``sticker`` on ``region`` of the face in ``image`` (BGR uint8, in place).

    Args:
        aligned: the frame's AlignedFace (its transform maps frame → aligned face), or raw
            frame landmarks (68, 2), aligned here with the canonical similarity. None or a
            face that is not ``ok``: the image is returned untouched (no face, no sticker).
        anchor_landmarks: aligned-face landmarks (68, 2) to place by (default: the frame's
            own); ``StickerPlacer`` passes the person's slowly averaged shape.

    Returns:
        ``image``.
    """
    face = _as_aligned(aligned, (geometry or StickerGeometry()).face_size)
    if face is None:
        return image
    landmarks = face.landmarks if anchor_landmarks is None else anchor_landmarks
    placement = place_sticker(landmarks, region, geometry)
    draw_placement(image, face.transform, placement, sticker)
    return image


def _as_aligned(aligned: AlignedFace | np.ndarray | None, face_size: int) -> AlignedFace | None:
    """An AlignedFace whose transform and landmarks come from THIS frame's raw landmarks
    (``unsmoothed``), or None without a usable face."""
    if aligned is None:
        return None
    if isinstance(aligned, AlignedFace):
        if not aligned.ok or aligned.transform is None or aligned.landmarks is None:
            return None
        return unsmoothed(aligned, face_size)
    points = np.asarray(aligned, np.float32)  # (68, 2) frame px
    return unsmoothed(AlignedFace(-1, 0, None, None, True, points, None), face_size)


def unsmoothed(aligned: AlignedFace, face_size: int = 160) -> AlignedFace:
    """The face with its similarity refitted on this frame's raw landmarks (``landmarks_px``).

    The tracker smooths its pose heavily (good for flow, which must not see jitter), so in
    fast head motion its transform lags the face by several px; a sticker drawn with it would
    slide over the skin. dlib's raw landmarks jitter by ~0.2 px but never lag.
    """
    if aligned.landmarks_px is None:
        return aligned
    from stream.face.align import apply_transform, fit_similarity
    from stream.face.rois import STABLE_POINTS, canonical_landmarks

    points = np.asarray(aligned.landmarks_px, np.float32)  # (68, 2) frame px
    stable = list(STABLE_POINTS)
    transform = fit_similarity(points[stable], canonical_landmarks(face_size)[stable])
    landmarks = apply_transform(transform, points).astype(np.float32)  # (68, 2) aligned px
    return dataclasses.replace(aligned, landmarks=landmarks, transform=transform)


def draw_placement(
    image: np.ndarray, transform: np.ndarray, placement: Placement, sticker: Sticker
) -> None:
    """Warp the sticker's disk from aligned-face px to the frame and alpha-blend it in place,
    touching only the disk's bounding box (the per-frame cost stays ~0.1 ms)."""
    size = sticker.bgra.shape[0]
    scale = placement.diameter / size
    # sticker px → aligned px: scale, then put its top-left at centre - diameter / 2
    to_aligned = np.array(
        [
            [scale, 0, placement.centre[0] - placement.diameter / 2],
            [0, scale, placement.centre[1] - placement.diameter / 2],
            [0, 0, 1],
        ],
        np.float64,
    )
    back = np.vstack([cv2.invertAffineTransform(transform).astype(np.float64), [0, 0, 1]])
    to_frame = (back @ to_aligned)[:2]  # (2, 3) sticker px → frame px
    corners = np.array([[0, 0], [size, 0], [0, size], [size, size]], np.float64)
    frame_corners = corners @ to_frame[:, :2].T + to_frame[:, 2]  # (4, 2)
    height, width = image.shape[:2]
    x0, y0 = np.maximum(np.floor(frame_corners.min(0)).astype(int), 0)
    x1, y1 = np.minimum(np.ceil(frame_corners.max(0)).astype(int) + 1, (width, height))
    if x1 <= x0 or y1 <= y0:
        return  # entirely outside the frame
    to_box = to_frame.copy()
    to_box[:, 2] -= (x0, y0)
    patch = cv2.warpAffine(
        sticker.bgra,
        to_box,
        (int(x1 - x0), int(y1 - y0)),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )  # (h, w, 4)
    alpha = patch[..., 3:4].astype(np.float32) * np.float32(1 / 255)  # (h, w, 1)
    box = image[y0:y1, x0:x1]  # (h, w, 3) view
    blended = box * (1 - alpha) + patch[..., :3] * alpha
    np.copyto(box, np.rint(blended).astype(np.uint8))


class StickerPlacer:
    """Keeps a sticker on one region of a tracked face, frame after frame.

    The placement follows the person's landmarks averaged over ``smoothing_s`` (an
    exponential average in aligned-face space, i.e. with head motion already removed), so the
    head carries the sticker while a brief expression moves the skin under it.

    Args:
        sticker: what to draw. region: where (``STICKER_REGIONS``; changeable at any time,
            e.g. by a causal calibration finishing in another thread).
    """

    def __init__(
        self,
        sticker: Sticker,
        region: str,
        geometry: StickerGeometry | None = None,
        smoothing_s: float = 2.0,
    ) -> None:
        self.sticker = sticker
        self.geometry = geometry or StickerGeometry()
        self.region = region
        self.smoothing_s = smoothing_s
        self._neutral: np.ndarray | None = None  # (68, 2) aligned px
        self._t_s = 0.0
        self.last: Placement | None = None

    @property
    def region(self) -> str:
        return self._region

    @region.setter
    def region(self, region: str) -> None:
        check_region(region)
        self._region = region  # one attribute store: safe to set from another thread

    def reset(self) -> None:
        """Forget the averaged shape (face lost, another person)."""
        self._neutral = None

    def apply(self, image: np.ndarray, aligned: AlignedFace | None) -> bool:
        """Draw on ``image`` in place; False (nothing drawn) when there is no usable face."""
        face = _as_aligned(aligned, self.geometry.face_size)
        if face is None:
            self.reset()
            self.last = None
            return False
        aligned = face
        if self._neutral is None or aligned.redetected:
            self._neutral = aligned.landmarks.astype(np.float64).copy()
        else:
            dt = max(aligned.t_s - self._t_s, 0.0)
            weight = 1.0 - np.exp(-dt / self.smoothing_s)
            self._neutral += weight * (aligned.landmarks - self._neutral)
        self._t_s = aligned.t_s
        self.last = place_sticker(self._neutral, self.region, self.geometry)
        draw_placement(image, aligned.transform, self.last, self.sticker)
        return True
