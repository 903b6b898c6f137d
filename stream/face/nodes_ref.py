"""Plain NumPy reference for the node kernels of ``stream/face/nodes.py``: the disk sampler and
the robust affine fit, vectorised, no Numba.

Same algorithm in float64; only the summation order differs from the kernels, so the two agree
to ~1e-6 px (tests/stream/face/test_nodes.py holds them to 1e-4 px). Allocates freely: never
call it per frame.
"""

from __future__ import annotations

import numpy as np

from stream.face.nodes import (
    HUBER_K,
    RAYLEIGH_MEDIAN,
    RIDGE,
    STABLE_NODES,
    TUKEY_C,
    NodeConfig,
)


def _stencil(radius: float) -> tuple[np.ndarray, np.ndarray]:
    """Integer offsets (K, 2) within ``radius`` of the node, and their Gaussian weights (K,)
    (σ = radius / 2), in the kernel's raster order (dy outer, dx inner)."""
    k = int(np.floor(radius))
    dy, dx = np.mgrid[-k : k + 1, -k : k + 1]
    d2 = (dx * dx + dy * dy).ravel()
    keep = d2 <= radius * radius
    offsets = np.stack([dx.ravel(), dy.ravel()], axis=1)[keep].astype(np.float64)  # (K, 2)
    return offsets, np.exp(-2.0 * d2[keep] / (radius * radius))  # (K,)


def sample_nodes_ref(
    field: np.ndarray, positions: np.ndarray, radius: float, scale: float = 1.0
) -> np.ndarray:
    """Reference for ``_sample_nodes``: (N, 2) float64 Gaussian-weighted disk means of the
    bilinearly sampled (H, W, 2) field at face-px positions (N, 2), / ``scale``."""
    h, w = field.shape[:2]
    offsets, weights = _stencil(radius)  # (K, 2), (K,)
    centres = scale * (positions.astype(np.float64) + 0.5) - 0.5  # (N, 2) in field px
    pts = centres[:, None, :] + scale * offsets[None]  # (N, K, 2)
    x = np.clip(pts[..., 0], 0.0, w - 1.0)
    y = np.clip(pts[..., 1], 0.0, h - 1.0)
    ix = np.minimum(x.astype(np.int64), w - 2)
    iy = np.minimum(y.astype(np.int64), h - 2)
    fx, fy = (x - ix)[..., None], (y - iy)[..., None]  # (N, K, 1)
    f = field.astype(np.float64)
    top = (1 - fx) * f[iy, ix] + fx * f[iy, ix + 1]  # (N, K, 2)
    bottom = (1 - fx) * f[iy + 1, ix] + fx * f[iy + 1, ix + 1]
    values = (1 - fy) * top + fy * bottom
    return (values * weights[None, :, None]).sum(1) / weights.sum() / scale  # (N, 2)


def fit_affine_ref(
    points: np.ndarray, flows: np.ndarray, n_huber: int, n_tukey: int, sigma_min: float
) -> np.ndarray:
    """Reference for ``_fit_affine``: (6,) (a, b, tx, c, d, ty), flow ≈ (a·x + b·y + tx,
    c·x + d·y + ty), by IRLS (Huber, then Tukey) from the median translation."""
    points, flows = points.astype(np.float64), flows.astype(np.float64)
    centre = points.mean(0)
    length = np.sqrt(((points - centre) ** 2).sum() / len(points)) + 1e-12
    design = np.column_stack([np.ones(len(points)), (points - centre) / length])  # (M, 3)
    params = np.zeros((3, 2))
    params[0] = np.median(flows, axis=0)
    for it in range(n_huber + n_tukey):
        norms = np.linalg.norm(flows - design @ params, axis=1)  # (M,)
        u = norms / max(np.median(norms) / RAYLEIGH_MEDIAN, sigma_min)
        if it < n_huber:
            wts = np.where(u <= HUBER_K, 1.0, HUBER_K / np.maximum(u, HUBER_K))
        else:
            wts = np.where(u < TUKEY_C, (1.0 - (u / TUKEY_C) ** 2) ** 2, 0.0)
        normal = (design.T * wts) @ design + np.diag([0.0, 1.0, 1.0]) * (RIDGE * wts.sum() + 1e-12)
        params = np.linalg.solve(normal, (design.T * wts) @ flows)  # (3, 2)
    lin = params[1:] / length  # (2, 2): rows ∂/∂x, ∂/∂y; columns the flow axes
    t = params[0] - centre @ lin  # (2,)
    return np.array([lin[0, 0], lin[1, 0], t[0], lin[0, 1], lin[1, 1], t[1]])


def node_residual_ref(
    field: np.ndarray,
    positions: np.ndarray,
    config: NodeConfig | None = None,
    scale: int = 1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reference for ``nodes.node_residual``: sampled (N, 2), residual (N, 2), affine (6,)."""
    c = config or NodeConfig()
    sampled = sample_nodes_ref(field, positions, c.radius_px, scale).astype(np.float32)
    stable = list(STABLE_NODES)
    affine = fit_affine_ref(
        positions[stable], sampled[stable], c.huber_iterations, c.tukey_iterations, c.sigma_min_px
    )
    p = positions.astype(np.float64)
    fitted = p @ affine.reshape(2, 3)[:, :2].T + affine.reshape(2, 3)[:, 2]  # (N, 2)
    return sampled, (sampled - fitted).astype(np.float32), affine
