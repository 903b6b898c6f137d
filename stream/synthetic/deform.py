"""Deformation families besides the TPS: piecewise-affine meshes and Gaussian kernels.

A spotter trained on one generator learns that generator. These families render the same
driven landmarks as ``tps.TpsWarper`` with differently shaped fields in between, so a model can
be trained on some and validated on another (design.md, "Evaluation that means something").
Each is a ``region.RegionWarper``: same anchors, region, blink composition, ``warp`` and
``full_maps``, hence interchangeable in the animator (``SyntheticConfig.deformation``).

    "mesh"    piecewise affine over a Delaunay triangulation of the driven points: the 68
              landmarks, the 16 anchors and the region's corners. Each driven triangle maps
              affinely onto its rest triangle, so the map is exact at the control points,
              continuous, and the identity outside the ring (every vertex there is fixed).
    "kernel"  Gaussian radial basis functions of width ``KERNEL_WIDTH`` face heights centred on
              the driven points, weights solved so that the field interpolates q_i -> p_i and
              0 at the anchors; tapered to identity like the TPS. The field is smooth but
              local: skin far from every landmark barely moves (unlike the TPS's spline).

Both are evaluated densely at every region pixel (no grid to upsample), which costs ~40 ms
(mesh) and ~5 ms (kernel) per frame for a 200 px face.

Example:
    warper = make_warper("mesh", rest, centre, 200.0, (640, 480))
    warper.warp(neutral, out, driven, 0.0, None)
"""

from __future__ import annotations

import numpy as np

from stream.synthetic.region import RegionWarper
from stream.synthetic.tps import TpsWarper

KERNEL_WIDTH = 0.07  # Gaussian sigma, face heights: wider overshoots between landmarks and folds
# Ridge on the kernel system, relative to its unit diagonal: keeps it solvable when two driven
# points nearly meet (a closed mouth's inner lips move together, so their values agree and the
# ridge moves the fit at the control points by ~1e-9 of the weights, far below a pixel).
_KERNEL_RIDGE = 1e-9


class MeshWarper(RegionWarper):
    """Piecewise-affine backward warp over the Delaunay triangulation of the driven points.

    The triangulation is of the *driven* points, redone each frame, so triangles never fold
    where the map is looked up; each maps to the triangle of the same vertices at rest.
    """

    def __init__(
        self, rest: np.ndarray, centre: np.ndarray, face_height_px: float, size: tuple[int, int]
    ) -> None:
        super().__init__(rest, centre, face_height_px, size)
        # Corners one pixel beyond the region so that every region pixel lies in the hull.
        x0, y0, x1, y1 = self.x0 - 1, self.y0 - 1, self.x1, self.y1
        corners = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float64)  # (4, 2)
        self._fixed = np.vstack([self.anchors_px, corners])  # (20, 2) never move
        self._field = np.zeros(self._identity.shape, np.float32)  # (rh, rw, 2)
        self._px, self._py = self._identity.astype(np.float64).transpose(2, 0, 1)  # (rh, rw)

    def _triangulate(self, driven: np.ndarray):
        """Delaunay triangulation of the driven points (88) and their rest positions (88, 2)."""
        from scipy.spatial import Delaunay  # scikit-image's dependency, only for this family

        return Delaunay(np.vstack([driven, self._fixed])), np.vstack([self.rest, self._fixed])

    def source_of(self, driven: np.ndarray, points: np.ndarray) -> np.ndarray:
        """Exact backward map (M, 2) float64 at ``points`` (M, 2) for ``driven`` (68, 2)."""
        tri, rest_all = self._triangulate(driven)
        simplex = tri.find_simplex(points)  # (M,) -1 outside the hull
        inside = simplex >= 0
        s = simplex[inside]  # (K,)
        transform = tri.transform[s]  # (K, 3, 2): barycentric = T[:2] @ (x - T[2])
        b = np.einsum("kij,kj->ki", transform[:, :2], points[inside] - transform[:, 2])  # (K, 2)
        bary = np.concatenate([b, 1.0 - b.sum(axis=1, keepdims=True)], axis=1)  # (K, 3)
        source = points.astype(np.float64)  # (M, 2) the identity outside the hull
        source[inside] = np.einsum("kv,kvd->kd", bary, rest_all[tri.simplices[s]])
        return source

    def _displacement(self, driven: np.ndarray, moving: np.ndarray | None) -> np.ndarray:
        """Triangle by triangle over its bounding box (a point-location query per pixel is
        ~15x slower); triangles of fixed points only are the identity and are skipped."""
        tri, rest_all = self._triangulate(driven)
        field = self._field
        field.fill(0.0)
        rh, rw = field.shape[:2]
        px, py = self._px, self._py  # (rh, rw) float64 pixel coordinates
        # scipy's properties are recomputed on each access: read them once.
        simplices, transforms, points = tri.simplices, tri.transform, tri.points
        for s in np.flatnonzero((simplices < 68).any(axis=1)):
            corners = points[simplices[s]]  # (3, 2) driven
            (bx0, by0), (bx1, by1) = np.floor(corners.min(0)), np.ceil(corners.max(0))
            c0, r0 = max(int(bx0) - self.x0, 0), max(int(by0) - self.y0, 0)
            c1, r1 = min(int(bx1) - self.x0 + 1, rw), min(int(by1) - self.y0 + 1, rh)
            if c1 <= c0 or r1 <= r0:
                continue
            (t00, t01), (t10, t11), (ox, oy) = transforms[s]  # barycentric = T (x - o)
            dx, dy = px[r0:r1, c0:c1] - ox, py[r0:r1, c0:c1] - oy  # (h, w) each
            b0, b1 = t00 * dx + t01 * dy, t10 * dx + t11 * dy  # (h, w) each
            b2 = 1.0 - b0 - b1
            # Pixels on a shared edge get either triangle's value: both maps agree there.
            inside = (b0 >= -1e-9) & (b1 >= -1e-9) & (b2 >= -1e-9)  # (h, w)
            (v0x, v0y), (v1x, v1y), (v2x, v2y) = rest_all[simplices[s]] - (ox, oy)
            patch = field[r0:r1, c0:c1]  # (h, w, 2) view
            patch[inside, 0] = (b0 * v0x + b1 * v1x + b2 * v2x - dx)[inside]
            patch[inside, 1] = (b0 * v0y + b1 * v1y + b2 * v2y - dy)[inside]
        return field


class KernelWarper(RegionWarper):
    """Gaussian-RBF backward warp: sum_i w_i exp(-|x - c_i|^2 / 2 sigma^2) through the control
    points c (68 driven landmarks with displacement p - q, 16 anchors with 0), tapered.

    The Gaussian is separable, so the dense field is two small matrix products per axis:
    (rh, N) @ (N, rw), exact at every pixel.
    """

    def __init__(
        self, rest: np.ndarray, centre: np.ndarray, face_height_px: float, size: tuple[int, int]
    ) -> None:
        super().__init__(rest, centre, face_height_px, size)
        self.sigma = KERNEL_WIDTH * self.scale
        self._xs = np.arange(self.x0, self.x1, dtype=np.float64)  # (rw,)
        self._ys = np.arange(self.y0, self.y1, dtype=np.float64)  # (rh,)
        gx, gy = np.meshgrid(self._xs, self._ys)  # (rh, rw) each
        self._taper = self.taper(gx, gy).astype(np.float32)  # (rh, rw)
        # BLAS writes contiguous planes only (a strided out= falls back to a slow loop).
        self._planes = np.empty((2, *self._taper.shape), np.float32)  # (2, rh, rw)
        self._field = np.empty(self._identity.shape, np.float32)  # (rh, rw, 2)

    def weights(self, driven: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(centres (84, 2), weights (84, 2)) float64 of the interpolating kernel sum."""
        ctrl = np.vstack([driven, self.anchors_px])  # (84, 2)
        values = np.zeros((len(ctrl), 2))  # (84, 2) px displacement q -> p
        values[:68] = self.rest - driven
        d2 = ((ctrl[:, None, :] - ctrl[None, :, :]) ** 2).sum(axis=2)  # (84, 84)
        system = np.exp(-d2 / (2.0 * self.sigma**2)) + _KERNEL_RIDGE * np.eye(len(ctrl))
        return ctrl, np.linalg.solve(system, values)

    def source_of(self, driven: np.ndarray, points: np.ndarray) -> np.ndarray:
        """Exact (float64, untapered inside the ring) backward map (M, 2) at ``points``."""
        ctrl, w = self.weights(driven)
        d2 = ((points[:, None, :] - ctrl[None, :, :]) ** 2).sum(axis=2)  # (M, 84)
        return points + np.exp(-d2 / (2.0 * self.sigma**2)) @ w

    def _displacement(self, driven: np.ndarray, moving: np.ndarray | None) -> np.ndarray:
        ctrl, w = self.weights(driven)
        inv = -0.5 / self.sigma**2
        gx = np.exp(inv * (self._xs[None, :] - ctrl[:, :1]) ** 2).astype(np.float32)  # (N, rw)
        gy = np.exp(inv * (self._ys[:, None] - ctrl[:, 1]) ** 2).astype(np.float32)  # (rh, N)
        w32 = w.astype(np.float32)  # (N, 2)
        for k in range(2):
            np.matmul(gy, w32[:, k : k + 1] * gx, out=self._planes[k])  # (rh, rw)
            np.multiply(self._planes[k], self._taper, out=self._field[..., k])
        return self._field


WARPERS: dict[str, type[RegionWarper]] = {
    "tps": TpsWarper,
    "mesh": MeshWarper,
    "kernel": KernelWarper,
}


def make_warper(
    deformation: str,
    rest: np.ndarray,
    centre: np.ndarray,
    face_height_px: float,
    size: tuple[int, int],
) -> RegionWarper:
    """The warper of one family (a ``WARPERS`` name) over rest landmarks (68, 2)."""
    return WARPERS[deformation](rest, centre, face_height_px, size)
