"""Action units of the synthetic animator: displacement patterns on the 68 landmarks, blinks.

Action units (AU) are displacement patterns on the 68 dlib landmarks, written once for the
image-left half of the face (the subject's right) and the midline, in face heights, with ``+x``
meaning *towards the midline*; the image-right half is the mirror image. Patterns are rotated by
the face's roll. Only the *shape* of a pattern matters: the animator scales each AU mix so that
its largest landmark displacement equals the amplitude it drew. Emotion classes are the MEGC
composite classes, as AU combinations like those annotated in CASME II / SAMM. AU45 (blink) is
not a table but an occlusion map built from this face's own eye landmarks (``EyelidMap``).

The rendering geometry (framing the photo, the TPS warp) is in ``synthetic_tps.py``.
"""

from __future__ import annotations

import numpy as np

from stream.errors import MexliveError
from stream.face.rois import ROI_NAMES, ROIS

# dlib 68-point mirror permutation: landmark i on one half <-> MIRROR[i] on the other.
MIRROR = np.array(
    [
        *range(16, -1, -1),  # jaw
        *range(26, 16, -1),  # brows
        *(27, 28, 29, 30, 35, 34, 33, 32, 31),  # nose bridge, nostrils
        *(45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40),  # eyes
        *(54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55),  # outer lip
        *(64, 63, 62, 61, 60, 67, 66, 65),  # inner lip
    ],
    dtype=np.intp,
)
MIDLINE = frozenset({8, 27, 28, 29, 30, 33, 51, 57, 62, 66})
# Image-left half (the subject's right): jaw, brow, nostrils, eye, lip corner and lip halves.
IMAGE_LEFT = np.array(
    [*range(8), *range(17, 22), 31, 32, *range(36, 42), 48, 49, 50, 58, 59, 60, 61, 67],
    dtype=np.intp,
)

# AU -> {landmark: (dx towards midline, dy down)} in face heights, image-left half + midline.
# fmt: off
AU_TABLE: dict[int, dict[int, tuple[float, float]]] = {
    1: {21: (0.0, -0.040), 20: (0.0, -0.030), 19: (0.0, -0.015), 18: (0.0, -0.005)},  # inner brow
    2: {17: (0.0, -0.035), 18: (0.0, -0.035), 19: (0.0, -0.025), 20: (0.0, -0.010)},  # outer brow
    4: {  # brow lowerer: down and inward, the upper lid follows a little
        21: (0.020, 0.030), 20: (0.015, 0.030), 19: (0.010, 0.025), 18: (0.005, 0.015),
        17: (0.0, 0.008), 37: (0.0, 0.004), 38: (0.0, 0.005),
    },
    5: {37: (0.0, -0.020), 38: (0.0, -0.020), 19: (0.0, -0.005), 20: (0.0, -0.005)},  # lid raiser
    6: {  # cheek raiser: lower lid and cheek up, the eye narrows from below
        40: (0.0, -0.012), 41: (0.0, -0.012), 36: (0.0, -0.004), 1: (0.0, -0.008),
        2: (0.0, -0.008), 48: (-0.004, -0.006),
    },
    7: {40: (0.0, -0.015), 41: (0.0, -0.015), 37: (0.0, 0.007), 38: (0.0, 0.007)},  # lid tightener
    9: {  # nose wrinkler: nostrils and upper lip up, inner brow pulled down
        31: (0.004, -0.020), 32: (0.0, -0.018), 33: (0.0, -0.015), 30: (0.0, -0.010),
        21: (0.005, 0.015), 20: (0.0, 0.008), 50: (0.0, -0.008), 51: (0.0, -0.008),
        61: (0.0, -0.006), 62: (0.0, -0.006),
    },
    10: {  # upper lip raiser
        49: (0.0, -0.025), 50: (0.0, -0.025), 51: (0.0, -0.025), 61: (0.0, -0.022),
        62: (0.0, -0.022), 48: (0.0, -0.010), 60: (0.0, -0.010), 31: (0.0, -0.006),
        32: (0.0, -0.006),
    },
    12: {  # lip corner puller: corners out and up, cheeks follow
        48: (-0.035, -0.025), 60: (-0.030, -0.022), 49: (-0.012, -0.010), 59: (-0.015, -0.008),
        61: (-0.010, -0.008), 67: (-0.010, -0.006), 3: (-0.005, -0.005), 4: (-0.004, -0.004),
    },
    14: {48: (0.015, 0.003), 60: (0.012, 0.002), 49: (0.004, 0.0), 59: (0.004, 0.0)},  # dimpler
    15: {  # lip corner depressor
        48: (-0.005, 0.030), 60: (-0.004, 0.025), 59: (0.0, 0.015), 58: (0.0, 0.008),
        67: (0.0, 0.010),
    },
    17: {  # chin raiser: chin and lower lip up; the closed mouth moves up as a whole
        8: (0.0, -0.020), 7: (0.0, -0.012), 57: (0.0, -0.020), 58: (0.0, -0.015),
        59: (0.0, -0.010), 66: (0.0, -0.010), 67: (0.0, -0.010), 61: (0.0, -0.010),
        62: (0.0, -0.010), 50: (0.0, -0.005), 51: (0.0, -0.005),
    },
    25: {  # lips part: lower lip down, upper inner lip up a little
        57: (0.0, 0.020), 58: (0.0, 0.018), 59: (0.0, 0.012), 66: (0.0, 0.022),
        67: (0.0, 0.018), 61: (0.0, -0.004), 62: (0.0, -0.005),
    },
    26: {  # jaw drop: chin, lower jaw and lower lip down
        8: (0.0, 0.060), 7: (0.0, 0.055), 6: (0.0, 0.045), 5: (0.0, 0.030), 4: (0.0, 0.015),
        57: (0.0, 0.055), 58: (0.0, 0.050), 59: (0.0, 0.040), 66: (0.0, 0.050),
        67: (0.0, 0.045), 48: (0.0, 0.015), 60: (0.0, 0.020),
    },
}
# fmt: on

EMOTIONS: dict[str, tuple[tuple[int, ...], ...]] = {
    "positive": ((6, 12), (12,)),
    "negative": ((4,), (4, 7), (9, 10), (14,), (15, 17), (4, 15)),
    "surprise": ((1, 2), (1, 2, 5), (1, 2, 26), (5, 26)),
}
BLINK_AU = 45


def face_roll(landmarks_px: np.ndarray) -> float:
    """Roll angle (radians) of the line from the image-left eye centre to the image-right one."""
    left = landmarks_px[36:42].mean(axis=0)  # (2,)
    right = landmarks_px[42:48].mean(axis=0)  # (2,)
    d = right - left
    return float(np.arctan2(d[1], d[0]))


def au_pattern(au: int, face_height_px: float, roll: float = 0.0) -> np.ndarray:
    """Displacement (68, 2) in pixels of one AU at unit intensity, mirrored to both halves."""
    pattern = np.zeros((68, 2), np.float64)  # (68, 2)
    for index, (dx_in, dy) in AU_TABLE[au].items():
        # Image-left points move towards the midline with +x; their mirrors with -x.
        pattern[index] = (dx_in, dy)
        if index not in MIDLINE:
            pattern[MIRROR[index]] = (-dx_in, dy)
    c, s = np.cos(roll), np.sin(roll)
    rotation = np.array([[c, -s], [s, c]])  # (2, 2)
    return face_height_px * pattern @ rotation.T  # (68, 2)


def combo_pattern(
    aus: tuple[int, ...], face_height_px: float, roll: float, rng: np.random.Generator
) -> np.ndarray:
    """A random-intensity, slightly asymmetric mix of ``aus`` with largest displacement 1 px."""
    pattern = np.zeros((68, 2), np.float64)  # (68, 2)
    for au in aus:
        pattern += rng.uniform(0.7, 1.0) * au_pattern(au, face_height_px, roll)
    # Real expressions are rarely symmetric: scale the two halves independently.
    gain = np.ones(68)  # (68,)
    gain[IMAGE_LEFT] = rng.uniform(0.85, 1.0)
    gain[MIRROR[IMAGE_LEFT]] = rng.uniform(0.85, 1.0)
    pattern *= gain[:, None]
    return pattern / np.linalg.norm(pattern, axis=1).max()


def make_warpable(pattern: np.ndarray, rest: np.ndarray, fraction: float = 0.4) -> None:
    """Adjust an expression's displacement (68, 2) in place so that the TPS can render it.

    Two landmarks that nearly touch at rest must not be driven apart or through each other: the
    spline would have to stretch a sub-pixel gap into a wide one, which no grid resolves and
    which shows as smeared lips or folded lids. So: a closed mouth's inner-lip pairs move
    together (the mouth moves, it does not open), and no eye narrows by more than ``fraction``
    of its opening (a strong AU6/AU7 would push the lids through each other).
    """
    for upper, lower in ((61, 67), (62, 66), (63, 65)):
        if np.linalg.norm(rest[lower] - rest[upper]) < 3.0:
            pattern[[upper, lower]] = pattern[[upper, lower]].mean(axis=0)
    worst = 0.0
    for upper, lower in ((37, 41), (38, 40), (43, 47), (44, 46)):
        opening = rest[lower] - rest[upper]  # (2,)
        closing = (pattern[upper] - pattern[lower]) @ opening / (opening @ opening)
        worst = max(worst, closing)
    if worst > fraction:
        pattern[36:48] *= fraction / worst


class EyelidMap:
    """AU45 (blink) as an occlusion: the upper lid slides down over the eye until it meets the
    lower lid. A smooth warp cannot do this (the eye opening would have to shrink to nothing,
    which makes a TPS oscillate wildly), so the blink is a piecewise map in rest coordinates,
    composed after the TPS: in each eye's frame (s along the eye, t down), the lid skin above
    the upper lid is stretched down to the lowered lid line, the eye below it is left in place
    (the lid covers it), and nothing outside the eye box moves.
    """

    # corner, upper lid, upper lid, corner, lower lid, lower lid, the brow above
    _EYES = ((36, 37, 38, 39, 40, 41, slice(17, 22)), (42, 43, 44, 45, 46, 47, slice(22, 27)))

    def __init__(self, rest: np.ndarray) -> None:
        self.eyes = []
        self.pattern = np.zeros((68, 2))  # (68, 2) lid displacement at full closure
        for a, u1, u2, b, l2, l1, brow in self._EYES:
            origin = rest[a].astype(np.float64)
            axis = (rest[b] - origin) / np.linalg.norm(rest[b] - origin)  # (2,) along the eye
            normal = np.array([-axis[1], axis[0]])  # (2,) down the face
            st = (rest - origin) @ np.stack([axis, normal], 1)  # (68, 2) eye coordinates
            # Smooth lid lines through both corners (cubics): polylines kink the lowered lid.
            upper, lower = _lid_curve(st[[a, u1, u2, b]]), _lid_curve(st[[a, l1, l2, b]])
            brow_t = np.interp(st[[u1, u2], 0], *st[brow][np.argsort(st[brow][:, 0])].T)
            skin = 0.5 * float(np.min(st[[u1, u2], 1] - brow_t))  # lid skin that slides down
            for k in (u1, u2):
                self.pattern[k] = (np.polyval(lower, st[k, 0]) - st[k, 1]) * normal
            self.eyes.append((origin, axis, normal, upper, lower, max(skin, 2.0), st[b, 0]))
        self.peak_px = float(np.linalg.norm(self.pattern, axis=1).max())

    def apply(self, coords: np.ndarray, weight: float) -> None:
        """Replace rest-space positions ``coords`` (..., 2) by the photo positions they show
        when the lids are ``weight`` (0..1) of the way closed."""
        for origin, axis, normal, upper, lower, skin, width in self.eyes:
            rel = coords - origin.astype(np.float32)  # (..., 2)
            s, t = rel @ axis.astype(np.float32), rel @ normal.astype(np.float32)  # (...)
            inside = (s > 0) & (s < width)
            if not inside.any():
                continue
            s_in, t_in = s[inside], t[inside]  # (K,)
            lid = np.polyval(upper, s_in)  # (K,) upper lid line
            lowered = lid + weight * (np.polyval(lower, s_in) - lid)  # (K,)
            top = lid - skin
            # The lid margin itself sits at ``lowered`` (1e-3: float32 rounding of the truth).
            covered = (t_in >= top) & (t_in <= lowered + 1e-3)
            source = top + (t_in - top) * skin / np.maximum(lowered - top, 1e-6)  # (K,)
            shift = np.where(covered, source - t_in, 0.0)[:, None] * normal  # (K, 2)
            coords[inside] += shift.astype(np.float32)


def _lid_curve(points: np.ndarray) -> np.ndarray:
    """Cubic t(s) through a lid's (corner, lid, lid, corner) points (4, 2), eye coordinates."""
    s = points[:, 0]
    degree = 3 if np.all(np.diff(s) > 0.5) else 1  # a degenerate eye gets a straight lid
    return np.polyfit(s, points[:, 1], degree)


def lead_push(region: str | None, roll: float) -> np.ndarray | None:
    """Unit upward displacement (68, 2) of a driving region's landmarks (None: no driver).

    The driver is the region's own landmarks (``stream/face/rois.py``); each expression gets this
    push scaled to its own amplitude, so the driver's motion and the rest's covary.
    """
    if region is None:
        return None
    push = np.zeros((68, 2), np.float64)  # (68, 2)
    push[list(ROIS[ROI_NAMES.index(region)].landmarks)] = (np.sin(roll), -np.cos(roll))
    return push


def split_lead(push: np.ndarray, now: np.ndarray, delayed: np.ndarray) -> np.ndarray:
    """The driver's landmarks take the expression at this frame, all others the expression
    as it was ``lead_frames`` earlier: (68, 2) from two (68, 2) displacements."""
    driver = np.any(push != 0.0, axis=1)[:, None]  # (68, 1)
    return np.where(driver, now, delayed)


def check_lead(region: str, lead_frames: int, fps: float, gap_s: float) -> None:
    """A driving region must be a known ROI and its lead shorter than half the quiet gap
    between expressions (so the delayed part never overlaps the next one)."""
    if region not in ROI_NAMES or region == "nose_bridge":
        raise MexliveError(f"lead region must be one of {ROI_NAMES[:-1]}: {region!r}")
    if not 1 <= lead_frames <= int(gap_s * fps) // 2:
        raise MexliveError(f"lead must be 1..{int(gap_s * fps) // 2} frames: {lead_frames}")
