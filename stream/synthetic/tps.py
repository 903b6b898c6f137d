"""Rendering geometry of the synthetic animator: the photo's framing and the TPS warp.

Finding and framing the photo's face (``photo_landmarks``, ``frame_photo``) and ``TpsWarper``,
the backward thin-plate-spline warp that renders driven landmarks, with ``tps_ref``, its plain
float64 reference (the tests hold the fast grid warp to it).
"""

from __future__ import annotations

import cv2
import numpy as np

from stream.errors import MexliveError
from stream.synthetic.region import COARSE_STEP, RegionWarper

# TPS grid steps, px, upsampled bicubically: fine over the landmarks (where the spline bends
# hardest; keeps the error < 0.1 px, tested), coarse (region.COARSE_STEP) over the rest.
FINE_STEP = 2
FINE_MARGIN_PX = 32  # fine grid around the moving landmarks, px
_CHUNK = 1024  # grid points per block of the (points, 68) kernel matrix: stays in L2

# ---- the photo's landmarks and its framing in the output frame -------------------------------

_LANDMARK_CACHE: dict[
    tuple[str, tuple[int, ...]], tuple[tuple[int, int, int, int], np.ndarray]
] = {}


def photo_landmarks(
    photo_rgb: np.ndarray, name: str
) -> tuple[tuple[int, int, int, int], np.ndarray]:
    """dlib face box and 68 landmarks (68, 2) of the photo's largest face, cached in-process.

    Tries the photo at upsample 1, then downscaled copies: dlib's HOG window is 80 px, so a
    face that fills a large photo is only found once the photo is small. Photos over 1024 px
    skip upsample 1, which takes many seconds there. Raises ``MexliveError`` naming the photo
    when no attempt finds a face.
    """
    key = (name, photo_rgb.shape)
    if key not in _LANDMARK_CACHE:
        from stream.face.models import detect_largest_face, landmarks_68

        side = max(photo_rgb.shape[:2])
        tries = [(1.0, 1)] if side <= 1024 else []
        tries += [(s, 0) for s in (0.5, 0.35, 0.25, 0.18) if s * side >= 160]
        box = None
        for scale, upsample in tries:
            image = photo_rgb
            if scale != 1.0:
                image = cv2.resize(
                    photo_rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA
                )
            found = detect_largest_face(np.ascontiguousarray(image), upsample)
            if found is not None:
                box = tuple(round(v / scale) for v in found)
                break
        if box is None:
            raise MexliveError(f"no face found in photo {name}")
        _LANDMARK_CACHE[key] = (box, landmarks_68(photo_rgb, box))
    box, landmarks = _LANDMARK_CACHE[key]
    return box, landmarks.copy()


def frame_photo(
    photo_rgb: np.ndarray,
    box: tuple[int, int, int, int],
    landmarks: np.ndarray,
    size: tuple[int, int],
    face_height_px: float,
    centre: tuple[float, float],
) -> tuple[np.ndarray, np.ndarray]:
    """Scale and crop the photo so the face box is ``face_height_px`` tall at ``centre``.

    Returns the neutral frame (H, W, 3) (replicated borders where the photo runs out) and its
    landmarks (68, 2) float64 in that frame, nudged so that no two coincide.
    """
    left, top, right, bottom = box
    scale = face_height_px / (bottom - top)
    pre = np.eye(3)  # photo -> source of the final warp
    source = photo_rgb
    if scale < 1.0:  # area-average first: warpAffine alone would alias a big downscale
        h, w = photo_rgb.shape[:2]
        dw, dh = max(1, round(w * scale)), max(1, round(h * scale))
        source = cv2.resize(photo_rgb, (dw, dh), interpolation=cv2.INTER_AREA)
        sx, sy = dw / w, dh / h  # resize maps pixel centres: x' = (x + 0.5) sx - 0.5
        pre = np.array([[sx, 0, 0.5 * sx - 0.5], [0, sy, 0.5 * sy - 0.5], [0, 0, 1]])
        scale = 1.0
    box_centre = pre @ np.array([(left + right) / 2, (top + bottom) / 2, 1.0])  # (3,)
    warp = np.array(
        [
            [scale, 0, centre[0] - scale * box_centre[0]],
            [0, scale, centre[1] - scale * box_centre[1]],
        ]
    )  # (2, 3)
    neutral = cv2.warpAffine(
        source, warp, size, flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE
    )
    to_frame = warp @ pre  # (2, 3) photo -> output frame
    points = landmarks.astype(np.float64) @ to_frame[:, :2].T + to_frame[:, 2]  # (68, 2)
    return neutral, separate(points)


def separate(points: np.ndarray, min_dist: float = 0.75) -> np.ndarray:
    """Push apart landmarks closer than ``min_dist`` px (dlib puts a closed mouth's inner lips on
    the same pixel); coincident control points would make the TPS system singular."""
    points = points.copy()
    for _ in range(4):
        diff = points[:, None, :] - points[None, :, :]  # (68, 68, 2)
        dist = np.linalg.norm(diff, axis=2) + np.eye(len(points)) * 1e9  # (68, 68)
        i, j = np.nonzero(np.triu(dist < min_dist))
        if len(i) == 0:
            break
        for a, b in zip(i, j, strict=True):
            d = diff[a, b]
            n = np.linalg.norm(d)
            # Coincident points part vertically: upper inner lip up, lower inner lip down.
            unit = d / n if n > 1e-6 else np.array([0.0, -1.0 if a < b else 1.0])
            push = 0.5 * (min_dist - n) * unit
            points[a] += push
            points[b] -= push
    return points


# ---- thin-plate-spline backward warp ---------------------------------------------------------


def _tps_kernel(d2: np.ndarray) -> np.ndarray:
    """TPS radial basis U = r^2 log r^2 from squared distances (0 at r = 0)."""
    return d2 * np.log(np.maximum(d2, 1e-30))


def _tps_fit(ctrl: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Weights (N + 3, D) of the TPS through ``values`` (N, D) at ``ctrl`` (N, 2), float64."""
    n = len(ctrl)
    system = np.zeros((n + 3, n + 3))  # (N + 3, N + 3)
    d2 = ((ctrl[:, None, :] - ctrl[None, :, :]) ** 2).sum(axis=2)  # (N, N)
    # A vanishing ridge keeps the system solvable when two driven points nearly meet (closed
    # lids); it moves the fit at the control points by ~1e-9 of the weights, far below a pixel.
    system[:n, :n] = _tps_kernel(d2) + 1e-9 * np.eye(n)
    system[:n, n] = system[n, :n] = 1.0
    system[:n, n + 1 :] = ctrl
    system[n + 1 :, :n] = ctrl.T
    rhs = np.zeros((n + 3, values.shape[1]))  # (N + 3, D)
    rhs[:n] = values
    return np.linalg.solve(system, rhs)


def tps_ref(src: np.ndarray, dst: np.ndarray, xy: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """Plain float64 reference: the TPS f with f(src_i) = dst_i, evaluated at ``xy`` (M, 2).

    ``scale`` (e.g. the face height) only conditions the system; the result does not depend on it.
    """
    origin = src.mean(axis=0)
    ctrl, pts = (src - origin) / scale, (xy - origin) / scale  # (N, 2), (M, 2)
    weights = _tps_fit(ctrl, dst - src)  # (N + 3, 2) displacement spline
    d2 = ((pts[:, None, :] - ctrl[None, :, :]) ** 2).sum(axis=2)  # (M, N)
    return xy + _tps_kernel(d2) @ weights[:-3] + weights[-3] + pts @ weights[-2:]


class _TpsGrid:
    """TPS samples every ``step`` px over a box (origin ``x0, y0``, ``gw`` x ``gh`` cells), at
    the sample centres ``cv2.resize`` expects, upsampled bicubically to every pixel; any
    sub-box of whole cells can be evaluated alone."""

    def __init__(self, x0, y0, gw, gh, step, centre, scale, anchors, taper=None) -> None:
        self.x0, self.y0, self.x1, self.y1 = x0, y0, x0 + gw * step, y0 + gh * step
        self.shape, self.step = (gh, gw), step
        gx, gy = np.meshgrid(
            x0 + (np.arange(gw) + 0.5) * step - 0.5, y0 + (np.arange(gh) + 0.5) * step - 0.5
        )  # (gh, gw) px
        grid = (np.stack([gx, gy], 2) - centre) / scale  # (gh, gw, 2)
        d2 = ((grid[:, :, None, :] - anchors) ** 2).sum(axis=3)  # (gh, gw, 16)
        # Per sample: (x, y, |x|^2, anchor kernels (16), 1, x, y); all but the landmark
        # columns of the kernel are fixed, so they are computed once.
        taper = np.ones_like(gx) if taper is None else taper(gx, gy)  # (gh, gw)
        self.table = np.concatenate(
            [
                grid,
                (grid**2).sum(axis=2, keepdims=True),
                _tps_kernel(d2),
                np.ones_like(d2[..., :1]),
                grid,
                taper[..., None],
            ],
            axis=2,
        ).astype(np.float32)  # (gh, gw, 23)
        self.rows = np.empty(gh * gw * 23, np.float32)  # flat scratch: the evaluated cells
        self.d2 = np.empty((_CHUNK, 68), np.float32)  # (C, 68)
        self.log = np.empty((_CHUNK, 68), np.float32)  # (C, 68)
        self.disp = np.empty(gh * gw * 2, np.float32)  # flat (n, 2)
        self.up = np.empty(gh * gw * step * step * 2, np.float32)  # flat (h, w, 2)

    def evaluate(self, q: np.ndarray, weights: np.ndarray, cells=None) -> np.ndarray:
        """Displacement (h, w, 2) px of the TPS with ``weights`` (87, 2) at centres q (68, 2),
        over the cells ``(row slice, col slice)`` (all by default)."""
        rows, cols = cells or (slice(None), slice(None))
        sub = self.table[rows, cols]  # (nr, nc, 23) view
        nr, nc = sub.shape[:2]
        n = nr * nc
        table = self.rows[: n * 23].reshape(nr, nc, 23)
        np.copyto(table, sub)
        table = table.reshape(n, 23)
        disp = self.disp[: n * 2].reshape(n, 2)
        np.matmul(table[:, 3:22], weights[68:], out=disp)  # anchors + affine part
        q_t = (-2.0 * q.T).astype(np.float32)  # (2, 68)
        q_sq = (q**2).sum(axis=1).astype(np.float32)  # (68,)
        w_moving = weights[:68]  # (68, 2)
        for start in range(0, n, _CHUNK):
            stop = min(start + _CHUNK, n)
            d2, log = self.d2[: stop - start], self.log[: stop - start]  # (C, 68)
            np.matmul(table[start:stop, :2], q_t, out=d2)
            d2 += table[start:stop, 2:3]
            d2 += q_sq
            np.maximum(d2, np.float32(1e-30), out=d2)
            np.log(d2, out=log)
            d2 *= log  # U(|x - q_i|)
            disp[start:stop] += d2 @ w_moving
        disp *= table[:, 22:]  # taper
        step = self.step
        up = self.up[: n * step * step * 2].reshape(nr * step, nc * step, 2)
        return cv2.resize(
            disp.reshape(nr, nc, 2), (nc * step, nr * step), dst=up, interpolation=cv2.INTER_CUBIC
        )

    def cells_around(self, lo: np.ndarray, hi: np.ndarray) -> tuple[slice, slice]:
        """Cells covering the pixel box [lo, hi] plus one cell of bicubic support each side."""
        c0, r0 = np.floor((lo - (self.x0, self.y0)) / self.step).astype(int) - 2
        c1, r1 = np.ceil((hi - (self.x0, self.y0)) / self.step).astype(int) + 3
        gh, gw = self.shape
        return slice(max(r0, 0), min(r1, gh)), slice(max(c0, 0), min(c1, gw))


class TpsWarper(RegionWarper):
    """Backward TPS warp of the face region with precomputed grids and buffers.

    The spline maps driven points q (68 landmarks + 16 fixed anchors) to rest points p. It is
    evaluated on a coarse grid over the region, tapered to identity between the anchor ring and
    the region edge so that nothing outside the region moves, and on a fine grid over the
    landmarks, which replaces the coarse one there (minus a border where bicubic upsampling
    would extrapolate). The blink's lid map is composed last (``EyelidMap``).
    """

    def __init__(
        self, rest: np.ndarray, centre: np.ndarray, face_height_px: float, size: tuple[int, int]
    ) -> None:
        super().__init__(rest, centre, face_height_px, size)
        self.coarse = self._grid(centre - self.reach, centre + self.reach, COARSE_STEP, self.taper)
        self.fine = self._grid(
            # room for the largest expression (15 px) and head motion (< 8 px) beyond the rest
            rest.min(axis=0) - FINE_MARGIN_PX - 24,
            rest.max(axis=0) + FINE_MARGIN_PX + 24,
            FINE_STEP,
        )

    def _grid(self, lo: np.ndarray, hi: np.ndarray, step: int, taper=None) -> _TpsGrid:
        """Grid over the box [lo, hi) clipped to the frame, whole cells only."""
        x0, y0, gw, gh = self._cells(lo, hi, step)
        return _TpsGrid(x0, y0, gw, gh, step, self.centre, self.scale, self._anchors, taper)

    def _displacement(self, driven: np.ndarray, moving: np.ndarray | None) -> np.ndarray:
        """The TPS's displacement (rh, rw, 2): coarse grid, fine grid pasted over the moving
        landmarks (``moving``: their driven and rest positions (K, 2))."""
        q = (driven - self.centre) / self.scale  # (68, 2)
        values = np.zeros((68 + 16, 2))  # (84, 2) px displacement q -> p
        values[:68] = self.rest - driven
        weights = _tps_fit(np.vstack([q, self._anchors]), values).astype(np.float32)
        up = self.coarse.evaluate(q, weights)  # (rh, rw, 2)
        if moving is not None and len(moving):
            fine = self.fine
            rows, cols = fine.cells_around(
                moving.min(axis=0) - FINE_MARGIN_PX, moving.max(axis=0) + FINE_MARGIN_PX
            )
            patch = fine.evaluate(q, weights, (rows, cols))  # (h, w, 2)
            # Paste all but a border of one step, where bicubic upsampling extrapolates.
            s = FINE_STEP
            y0 = fine.y0 + rows.start * s - self.y0
            x0 = fine.x0 + cols.start * s - self.x0
            # A face that fills the frame: the fine grid may reach past the coarse one's
            # whole cells, so the paste is clipped to the region.
            h, w = patch.shape[:2]
            ty0, tx0 = max(y0 + s, 0), max(x0 + s, 0)
            ty1, tx1 = min(y0 + h - s, up.shape[0]), min(x0 + w - s, up.shape[1])
            up[ty0:ty1, tx0:tx1] = patch[ty0 - y0 : ty1 - y0, tx0 - x0 : tx1 - x0]
        return up
