"""Plain NumPy reference for ``stream/face/flow.py`` (same algorithm, vectorised, no Numba), and the
known sub-pixel warps that tests and benchmarks measure flow accuracy on.

The reference follows the kernels operation by operation, in float32 and in the same summation
order, so the two agree to float32 rounding (tests/stream/face/test_flow.py states the tolerance).
It allocates freely and is slow: never call it per frame.
"""

from __future__ import annotations

import cv2
import numpy as np

from stream.face.flow import FlowConfig

F32 = np.float32


def _extract(img: np.ndarray, x0: int, y0: int, side: int) -> np.ndarray:
    h, w = img.shape
    ys = np.clip(np.arange(y0, y0 + side), 0, h - 1)
    xs = np.clip(np.arange(x0, x0 + side), 0, w - 1)
    return img[np.ix_(ys, xs)].astype(F32)  # (S, S)


def _downsample(img: np.ndarray) -> np.ndarray:
    h, w = img.shape[0] // 2, img.shape[1] // 2
    a = img[: 2 * h : 2, : 2 * w : 2] + img[: 2 * h : 2, 1 : 2 * w : 2]
    a = a + img[1 : 2 * h : 2, : 2 * w : 2] + img[1 : 2 * h : 2, 1 : 2 * w : 2]
    return F32(0.25) * a  # (h//2, w//2)


def _box_sum(a: np.ndarray, r: int) -> np.ndarray:
    """Box sum of half-width r, zero outside ``a``: float32 prefix sums along rows, then
    columns, differenced 2r+1 apart (np.cumsum adds in order, as the kernel's loops)."""
    h, w = a.shape
    c = np.cumsum(np.pad(a, ((0, 0), (r + 1, r))), axis=1)  # (h, w + 2r + 1)
    tmp = c[:, 2 * r + 1 :] - c[:, :w]
    c = np.cumsum(np.pad(tmp, ((r + 1, r), (0, 0))), axis=0)  # (h + 2r + 1, w)
    return c[2 * r + 1 :] - c[:h]


def _bilinear(img: np.ndarray, xs: np.ndarray, ys: np.ndarray, offset: int) -> np.ndarray:
    """Sample img at (xs, ys) - offset, clamped to the image.

    The kernels keep their levels padded by ``offset`` and add the flow to padded
    coordinates; doing the same here keeps the float32 rounding of the positions identical.
    """
    h, w = img.shape
    xs = np.minimum(np.maximum(xs, F32(offset)), F32(offset + w - 1))
    ys = np.minimum(np.maximum(ys, F32(offset)), F32(offset + h - 1))
    ix = np.minimum(xs.astype(np.int64), offset + w - 2)
    iy = np.minimum(ys.astype(np.int64), offset + h - 2)
    fx = xs - ix.astype(F32)
    fy = ys - iy.astype(F32)
    ix, iy = ix - offset, iy - offset
    one = F32(1)
    top = (one - fx) * img[iy, ix] + fx * img[iy, ix + 1]
    bot = (one - fx) * img[iy + 1, ix] + fx * img[iy + 1, ix + 1]
    return (one - fy) * top + fy * bot


def _upsample_flow(uc: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear ×2: fine pixel j sits at coarse coordinate j/2 - 1/4."""
    hc, wc = uc.shape
    ys = np.arange(shape[0], dtype=F32)[:, None] * F32(0.5) - F32(0.25)  # (h, 1)
    xs = np.arange(shape[1], dtype=F32)[None, :] * F32(0.5) - F32(0.25)  # (1, w)
    ys = np.minimum(np.maximum(ys, F32(0)), F32(hc - 1))
    xs = np.minimum(np.maximum(xs, F32(0)), F32(wc - 1))
    iy = np.minimum(ys.astype(np.int64), max(hc - 2, 0))
    ix = np.minimum(xs.astype(np.int64), max(wc - 2, 0))
    fy, fx = ys - iy.astype(F32), xs - ix.astype(F32)
    iy1, ix1 = np.minimum(iy + 1, hc - 1), np.minimum(ix + 1, wc - 1)
    one = F32(1)
    top = (one - fx) * uc[iy, ix] + fx * uc[iy, ix1]
    bot = (one - fx) * uc[iy1, ix] + fx * uc[iy1, ix1]
    return F32(2) * ((one - fy) * top + fy * bot)  # (h, w)


def _lk_level(
    ref: np.ndarray,
    cur: np.ndarray,
    u: np.ndarray,
    v: np.ndarray,
    rect: tuple[int, int, int, int],
    ring: int,
    damp: np.float32,
    iterations: int,
    config: FlowConfig,
) -> None:
    """Dense LK solving rect = (y0, y1, x0, x1) of one level, u and v updated in place there;
    the windows also read a fixed band of ``ring`` px around rect (zero beyond it)."""
    r, pad = config.window, config.pad
    h, w = ref.shape
    y0, y1, x0, x1 = rect[0] - ring, rect[1] + ring, rect[2] - ring, rect[3] + ring  # band
    ii = np.arange(y0, y1)[:, None]  # (h', 1)
    jj = np.arange(x0, x1)[None, :]  # (1, w')
    half = F32(0.5)
    gx = half * (ref[ii, np.minimum(jj + 1, w - 1)] - ref[ii, np.maximum(jj - 1, 0)])
    gy = half * (ref[np.minimum(ii + 1, h - 1), jj] - ref[np.maximum(ii - 1, 0), jj])
    inner = (slice(ring, y1 - y0 - ring), slice(ring, x1 - x0 - ring))  # rect inside the band
    pr = r - ring  # the windows reach pr px past the band, where products are zero

    def box(a: np.ndarray) -> np.ndarray:  # window sums on rect of a band-sized array
        return _box_sum(np.pad(a, pr), r)[pr : -pr or None, pr : -pr or None][inner]

    a11 = box(gx * gx) + damp
    a12 = box(gx * gy)
    a22 = box(gy * gy) + damp
    inv = F32(1) / (a11 * a22 - a12 * a12)
    xs0 = (jj + pad).astype(F32)  # padded coordinates, as the kernels
    ys0 = (ii + pad).astype(F32)
    uu, vv = u[y0:y1, x0:x1], v[y0:y1, x0:x1]  # views: the rect part is updated in place
    c = np.zeros_like(gx)
    for it in range(iterations):
        e = _bilinear(cur, xs0 + uu, ys0 + vv, pad) - ref[y0:y1, x0:x1]
        fresh = gx * uu + gy * vv - e  # each pixel's estimate of its total flow (M·w - ∇I·e)
        if it == 0:
            c = fresh
        else:  # the band's flow is fixed: its terms stay those of the first warp
            c[inner] = fresh[inner]
        b1 = box(gx * c) + damp * uu[inner]
        b2 = box(gy * c) + damp * vv[inner]
        uu[inner], vv[inner] = (a22 * b1 - a12 * b2) * inv, (a11 * b2 - a12 * b1) * inv


def _pyramid_flow(
    ref: np.ndarray,
    cur: np.ndarray,
    rect: tuple[int, int, int, int],
    ring: int,
    config: FlowConfig,
) -> tuple[np.ndarray, np.ndarray]:
    """Coarse-to-fine flow (u, v), each (H, W), valid on rect of the finest level."""
    refs, curs = [ref.astype(F32)], [cur.astype(F32)]
    for _ in range(1, config.levels):
        refs.append(_downsample(refs[-1]))
        curs.append(_downsample(curs[-1]))
    iters, damps = config.schedule()
    u = v = None
    for lv in range(config.levels - 1, -1, -1):
        h, w = refs[lv].shape
        if u is None:
            u, v = np.zeros((h, w), F32), np.zeros((h, w), F32)
        else:
            u, v = _upsample_flow(u, (h, w)), _upsample_flow(v, (h, w))
        rect_lv, ring_lv = (rect, ring) if lv == 0 else ((0, h, 0, w), 0)
        _lk_level(refs[lv], curs[lv], u, v, rect_lv, ring_lv, damps[lv], int(iters[lv]), config)
    return u, v


def _strain(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Strain magnitude: central differences, one-sided at the edges (np.gradient, order 1)."""
    uy, ux = np.gradient(u)
    vy, vx = np.gradient(v)
    shear = uy + vx  # 2·exy
    return np.sqrt(ux * ux + vy * vy + F32(0.5) * shear * shear).astype(F32)


def _pool(flow: np.ndarray, strain: np.ndarray, k: int) -> np.ndarray:
    dx, dy = flow[..., 0].ravel(), flow[..., 1].ravel()
    mag = np.sqrt(dx * dx + dy * dy)
    t = np.partition(mag, mag.size - k)[mag.size - k]  # k-th largest
    above = np.flatnonzero(mag > t)
    ties = np.flatnonzero(mag == t)[: k - above.size]  # raster order, as the kernel
    take = np.concatenate([above, ties])
    sums = [a[take].astype(np.float64).sum() for a in (dx, dy, mag, strain.ravel())]
    return (np.array(sums) / k).astype(F32)  # (4,)


def roi_flow_ref(
    ref: np.ndarray,
    cur: np.ndarray,
    corners: np.ndarray,
    config: FlowConfig = FlowConfig(),  # noqa: B008
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reference for ``RoiFlow.compute``: pooled (R, 4), flow (R, P, P, 2), strain (R, P, P)."""
    p, m, s = config.patch, config.margin, config.side
    lo, hi, ring = config.finest_rect
    pooled, flows, strains = [], [], []
    for x, y in np.asarray(corners):
        u, v = _pyramid_flow(
            _extract(ref, x - m, y - m, s),
            _extract(cur, x - m, y - m, s),
            (lo, hi, lo, hi),
            ring,
            config,
        )
        strain = _strain(u[lo:hi, lo:hi], v[lo:hi, lo:hi])
        flow = np.stack([u[m : m + p, m : m + p], v[m : m + p, m : m + p]], axis=-1)  # (P, P, 2)
        strain = strain[m - lo : m - lo + p, m - lo : m - lo + p]  # (P, P)
        pooled.append(_pool(flow, strain, config.top_k))
        flows.append(flow)
        strains.append(strain)
    return np.stack(pooled), np.stack(flows), np.stack(strains)


def dense_flow_ref(
    ref: np.ndarray,
    cur: np.ndarray,
    config: FlowConfig = FlowConfig(),  # noqa: B008
) -> np.ndarray:
    """Reference for ``dense_flow``: (H, W, 2) float32."""
    h, w = ref.shape
    u, v = _pyramid_flow(ref, cur, (0, h, 0, w), 0, config)
    return np.stack([u, v], axis=-1)


# ------------------------------------------------------------ known warps for accuracy ---


def smooth_displacement(
    shape: tuple[int, int], max_px: float, seed: int, grid: int = 4
) -> np.ndarray:
    """A smooth random displacement field (H, W, 2) float32 whose largest vector is ``max_px``.

    Gaussian noise on a (grid+1)² lattice, upsampled bicubically: a few bumps across the image,
    like skin moving under a handful of muscles.
    """
    rng = np.random.default_rng(seed)
    coarse = rng.standard_normal((grid + 1, grid + 1, 2)).astype(F32)
    field = cv2.resize(coarse, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)  # (H, W, 2)
    return (field * (max_px / np.sqrt((field**2).sum(-1)).max())).astype(F32)


def warp_pair(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """The frame ``cur`` that ``flow`` (H, W, 2) maps ``image`` onto: image(x) = cur(x + flow(x)).

    cv2.remap needs the backward map b(y) with cur(y) = image(y + b(y)); since y = x + flow(x),
    b solves b(y) = -flow(y + b(y)), found by fixed-point iteration (converges for smooth flow
    with gradients well below 1).
    """
    h, w = image.shape[:2]
    xs, ys = np.meshgrid(np.arange(w, dtype=F32), np.arange(h, dtype=F32))
    back = -flow.copy()
    for _ in range(30):
        back = -cv2.remap(
            flow,
            xs + back[..., 0],
            ys + back[..., 1],
            cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )
    return cv2.remap(
        image,
        xs + back[..., 0],
        ys + back[..., 1],
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REFLECT101,
    )
