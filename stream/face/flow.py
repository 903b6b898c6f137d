"""Numba optical flow on facial ROI patches: dense pyramidal Lucas–Kanade, optical strain and
top-k magnitude pooling, every frame, without allocating.

Algorithm (``stream/face/flow_ref.py`` is the plain NumPy reference, operation for operation):

1. Each ROI is cut from both faces as a ``side = patch + 2·margin`` square (the face's border
   replicated where it leaves the face) and reduced to a ``levels``-deep pyramid (2×2 means).
2. Coarse to fine, every pixel gets its own translation by dense Lucas–Kanade over a box
   window of (2·window+1)² px, on central-difference gradients of ``ref``. Each warp samples
   ``cur`` at x + flow (bilinear), and every window member y contributes ``M(y)·w(y) -
   ∇I(y)·e(y)`` (its own estimate of the total flow; M = ∇I∇Iᵀ, e the warped residual)
   rather than a step taken at its own flow: the classic per-pixel step diverged on striped
   texture, this form is exact in one step wherever the image is linear. ``damping`` (finest
   level) and ``coarse_damping`` pull towards the current flow, so textureless skin keeps the
   coarser estimate (or zero) instead of amplifying noise; the coarse level is damped hard so
   it only speaks where texture is strong (weakly damped, it cost accuracy on hold-out
   seeds). The finest level solves only the patch plus the 1 px that strain needs; its
   windows also read a ``window``-px band around that, held at the upsampled coarse flow.
3. Optical strain by central differences: sqrt(exx² + eyy² + 2·exy²), exy = ½(∂u/∂y + ∂v/∂x).
4. Pooling per ROI: the ``round(top_fraction·P²)`` strongest vectors by magnitude (ties in
   raster order) → mean dx, mean dy, mean magnitude, and mean strain over those pixels.

Conventions: images float32 grayscale in 0..1 (the damping constants assume that scale: divide
uint8 faces by 255). Flow as OpenCV's ``calcOpticalFlowFarneback(prev=ref, next=cur)``:
``ref(x, y) ≈ cur(x + dx, y + dy)``, in aligned-face pixels, x right, y down.

Example::

    roi_flow = RoiFlow(FlowConfig(), n_rois=14)             # once: allocates every buffer
    pooled = roi_flow.compute(face_ref, face_cur, corners)  # per frame: (R, 4) float32
    roi_flow.flow[3]                                        # (24, 24, 2) dense flow of ROI 3
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stream.face.flow_kernels import N_PLANES, _pyramid_flow, _roi_flow
from stream.face.flow_pool import pool_relative


@dataclass(frozen=True)
class FlowConfig:
    """Flow parameters; defaults tuned on hold-out seeds (see benchmarks/bench_flow.py).

    Attributes:
        patch: ROI patch side, aligned-face px.
        margin: context around each patch for the pyramid, px; ≥ 1 (strain reads 1 px out),
            ≥ 1 + window keeps the finest level's windows whole.
        levels: pyramid depth (1 = full resolution only).
        iterations: Lucas–Kanade warps on the finest level.
        window: half-width of the box window (2·window+1)², ≥ 1.
        top_fraction: share of a patch's strongest vectors that the pooling averages.
        damping: added per window pixel to the finest level's structure tensor, in
            (intensity/px)² of 0..1 images (pulls towards the coarser flow).
        coarse_damping: the same on the coarser levels.
        coarse_iterations: warps on each coarser level (None: ``iterations``).
    """

    patch: int = 24
    margin: int = 8
    levels: int = 2
    iterations: int = 3
    window: int = 5
    top_fraction: float = 0.3
    damping: float = 1e-6
    coarse_damping: float = 1e-3
    coarse_iterations: int | None = 1

    def __post_init__(self) -> None:
        if min(self.patch - 1, self.margin, self.levels, self.iterations, self.window) < 1:
            raise ValueError(f"FlowConfig sizes must be ≥ 1 (patch ≥ 2): {self}")
        if self.side >> (self.levels - 1) < 2:
            raise ValueError(f"patch + 2·margin = {self.side} too small for {self.levels} levels")
        if not 0.0 < self.top_fraction <= 1.0:
            raise ValueError("top_fraction must be in (0, 1]")
        if self.damping <= 0.0 or self.coarse_damping <= 0.0:
            raise ValueError("damping and coarse_damping must be > 0")
        if self.coarse_iterations is not None and self.coarse_iterations < 0:
            raise ValueError("coarse_iterations must be ≥ 0")

    @property
    def side(self) -> int:
        """Side of the square each ROI is computed on."""
        return self.patch + 2 * self.margin

    @property
    def top_k(self) -> int:
        """How many pixels of a patch the pooling averages."""
        return max(1, round(self.top_fraction * self.patch * self.patch))

    @property
    def pad(self) -> int:
        """Zero ring around every level array (the box sums' prefixes need window + 1)."""
        return self.window + 1

    @property
    def finest_rect(self) -> tuple[int, int, int]:
        """(lo, hi, ring): the finest level solves rows = columns [lo, hi) of the side-square
        (the patch and 1 px), its windows also reading a fixed ``ring``-px band around it."""
        return self.margin - 1, self.margin + self.patch + 1, min(self.window, self.margin - 1)

    def schedule(self) -> tuple[np.ndarray, np.ndarray]:
        """Per level, finest first: warps (L,) int64 and damping scaled to a window's sum
        (L,) float32."""
        coarse = self.iterations if self.coarse_iterations is None else self.coarse_iterations
        iters = np.full(self.levels, coarse, np.int64)
        iters[0] = self.iterations
        damps = np.full(self.levels, self.coarse_damping * (2 * self.window + 1) ** 2, np.float32)
        damps[0] = self.damping * (2 * self.window + 1) ** 2
        return iters, damps


# ------------------------------------------------------------------------------ public API ---


class RoiFlow:
    """Per-frame ROI flow; every buffer is allocated here, once. One instance per stream
    worker (the buffers are its state; the kernels release the GIL).

    Args:
        config: flow parameters.
        n_rois: the most ROIs one ``compute`` call may pass.

    After ``compute`` (overwritten by the next call):
        flow: (R, P, P, 2) float32 dense flow of each patch, [..., 0] = dx, [..., 1] = dy.
        strain: (R, P, P) float32 optical strain magnitude.
        pooled: (R, 4) float32, what ``compute`` returned.
    """

    def __init__(self, config: FlowConfig = FlowConfig(), n_rois: int = 16) -> None:
        c = self.config = config
        self.n_rois = n_rois
        n = c.side + 2 * c.pad  # padded level side
        self._iters, self._damps = c.schedule()  # (L,), (L,)
        self._pyr = np.zeros((4, c.levels, n, n), np.float32)  # ref, cur, u, v per level
        self._planes = np.zeros((c.levels, N_PLANES, n, n), np.float32)  # (L, 12, n, n)
        self._rows = np.zeros((7, n), np.float32)  # row scratch of the warp
        self._idx = np.zeros(n, np.int32)
        self._scratch = np.zeros((2, c.patch * c.patch), np.float32)  # (2, P·P) magnitudes
        self._flow = np.zeros((n_rois, c.patch, c.patch, 2), np.float32)  # (R, P, P, 2)
        self._strain = np.zeros((n_rois, c.patch, c.patch), np.float32)  # (R, P, P)
        self._pooled = np.zeros((n_rois, 4), np.float32)  # (R, 4)
        self._relative = np.zeros((n_rois, 4), np.float32)  # (R, 4) anchor-relative pooling
        self._work = np.zeros((c.patch, c.patch, 2), np.float32)  # (P, P, 2)
        self._n = 0

    @property
    def flow(self) -> np.ndarray:
        return self._flow[: self._n]  # (R, P, P, 2)

    @property
    def strain(self) -> np.ndarray:
        return self._strain[: self._n]  # (R, P, P)

    @property
    def pooled(self) -> np.ndarray:
        return self._pooled[: self._n]  # (R, 4)

    def compute(self, ref: np.ndarray, cur: np.ndarray, corners: np.ndarray) -> np.ndarray:
        """Flow from ``ref`` to ``cur`` on each ROI patch, pooled.

        Args:
            ref, cur: (H, W) float32 aligned faces in 0..1, C-contiguous.
            corners: (R, 2) int32 top-left (x, y) of each patch, R ≤ n_rois; patch and margin
                may reach past the image (its border is replicated).

        Returns:
            (R, 4) float32 view of ``self.pooled``: [mean_dx, mean_dy, mean_mag, mean_strain]
            over each patch's top ``top_fraction`` vectors by magnitude.
        """
        n = corners.shape[0]
        if n > self.n_rois:
            raise ValueError(f"{n} ROIs but buffers for {self.n_rois}")
        if (
            ref.ndim != 2
            or ref.shape != cur.shape
            or np.float32 != ref.dtype
            or np.float32 != cur.dtype
        ):
            raise TypeError("ref and cur must be (H, W) float32 images of one shape")
        c = self.config
        self._n = n
        _roi_flow(
            ref,
            cur,
            np.asarray(corners, np.int32),
            c.patch,
            c.margin,
            self._iters,
            c.window,
            self._damps,
            c.top_k,
            self._pyr,
            self._planes,
            self._rows,
            self._idx,
            self._scratch,
            self._flow,
            self._strain,
            self._pooled,
        )
        return self._pooled[:n]  # (R, 4)

    def pool_relative(self, anchor: int) -> np.ndarray:
        """Re-pool the last ``compute`` with ROI ``anchor``'s mean flow subtracted from every
        other ROI (head-motion removal). Returns (R, 4) float32; row ``anchor`` holds the
        anchor's mean dx, dy (and zeros)."""
        pool_relative(
            self._flow[: self._n],
            self._strain[: self._n],
            anchor,
            self.config.top_k,
            self._scratch,
            self._work,
            self._relative[: self._n],
        )
        return self._relative[: self._n]  # (R, 4)


def dense_flow(ref: np.ndarray, cur: np.ndarray, config: FlowConfig = FlowConfig()) -> np.ndarray:
    """The same algorithm on a whole (H, W) float32 image (windows truncated at its edge):
    (H, W, 2) float32 flow. Allocates per call: for benchmarks and offline use."""
    c = config
    h, w = ref.shape
    pad = c.pad
    if h >> (c.levels - 1) < 2 or w >> (c.levels - 1) < 2:
        raise ValueError(f"image {ref.shape} too small for {c.levels} levels")
    if (h + 2 * pad) * (w + 2 * pad) >= 2**24:  # the warp's float32 flat index must be exact
        raise ValueError(f"image {ref.shape} too large for dense_flow")
    pyr = np.zeros((4, c.levels, h + 2 * pad, w + 2 * pad), np.float32)
    planes = np.zeros((c.levels, N_PLANES, h + 2 * pad, w + 2 * pad), np.float32)
    pyr[0, 0, pad : pad + h, pad : pad + w] = ref
    pyr[1, 0, pad : pad + h, pad : pad + w] = cur
    rows = np.zeros((7, w + 2 * pad), np.float32)
    idx = np.zeros(w + 2 * pad, np.int32)
    iters, damps = c.schedule()
    _pyramid_flow(
        pyr, planes, rows, idx, h, w, pad, (pad, pad + h, pad, pad + w), 0, iters, c.window, damps
    )
    return np.stack(
        [pyr[2, 0, pad : pad + h, pad : pad + w], pyr[3, 0, pad : pad + h, pad : pad + w]], axis=-1
    )  # (H, W, 2)


def warm_up() -> None:
    """Compile (or load from Numba's cache) every kernel; call once at start-up."""
    config = FlowConfig(patch=4, margin=3, window=1)
    ref = np.random.default_rng(0).random((12, 12), dtype=np.float32)  # (12, 12)
    roi_flow = RoiFlow(config, n_rois=2)
    roi_flow.compute(ref, ref, np.array([[0, 0], [6, 5]], np.int32))
    roi_flow.pool_relative(0)
    dense_flow(ref, ref, config)
