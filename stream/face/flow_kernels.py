"""The Numba kernels behind ``stream/face/flow.py`` (see its docstring for the algorithm): the
pyramidal Lucas-Kanade solve per ROI; strain and pooling are in ``stream/face/flow_pool.py``.

Every function is ``@njit(cache=True, nogil=True)`` and writes into buffers it is given: the
per-frame path allocates nothing. ``stream/face/flow_ref.py`` mirrors them operation for operation.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from stream.face.flow_pool import _pool, _strain

# Planes of the per-level work buffer: gradients, windowed tensor, products, box scratch, sums.
_GX, _GY, _G11, _G12, _G22, _P1, _P2, _P3, _TMP, _CS, _S1, _S2 = range(12)
N_PLANES = 12

# Level arrays are padded by `pad` = window + 1 on every side: pixel (i, j) of a level sits at
# [pad + i, pad + j], and rectangles are in those padded coordinates. The product planes are
# only ever written on the same rectangles, so the rest stays zero and window sums run without
# bounds checks (the reference's zero padding). Hot loops index with uint64 (`_U1` steps):
# Numba then drops its negative-index branch and LLVM vectorises the row loops. Never mix in a
# signed int (uint64 with int64 gives float64) nor a Python int with a float32 (float64).
_U1 = np.uint64(1)


@njit(cache=True, nogil=True)
def _extract(img, x0, y0, side, pad, out):
    """The (side, side) image at offset pad in out = img[y0:y0+side, x0:x0+side], with the
    border replicated where the square leaves img."""
    h, w = img.shape
    p = np.uint64(pad)
    if x0 >= 0 and y0 >= 0 and x0 + side <= w and y0 + side <= h:
        ux, uy = np.uint64(x0), np.uint64(y0)
        for i in range(np.uint64(side)):
            for j in range(np.uint64(side)):
                out[p + i, p + j] = img[uy + i, ux + j]
        return
    for i in range(side):
        yy = min(max(y0 + i, 0), h - 1)
        for j in range(side):
            out[pad + i, pad + j] = img[yy, min(max(x0 + j, 0), w - 1)]


@njit(cache=True, nogil=True)
def _replicate_ring(img, h, w, pad):
    """Copy the (h, w) image's edge into the 1-px ring around it, so that central differences
    read i ± 1 everywhere and equal clamped ones at the edge."""
    for j in range(pad, pad + w):
        img[pad - 1, j] = img[pad, j]
        img[pad + h, j] = img[pad + h - 1, j]
    for i in range(pad - 1, pad + h + 1):
        img[i, pad - 1] = img[i, pad]
        img[i, pad + w] = img[i, pad + w - 1]


@njit(cache=True, nogil=True)
def _downsample(src, h, w, pad, dst):
    """2×2 means of the (h, w) image in src into the (h//2, w//2) image in dst."""
    p = np.uint64(pad)
    q = np.float32(0.25)
    for i in range(np.uint64(h // 2)):
        a = p + i + i
        for j in range(np.uint64(w // 2)):
            b = p + j + j
            s = src[a, b] + src[a, b + _U1]
            s = s + src[a + _U1, b] + src[a + _U1, b + _U1]
            dst[p + i, p + j] = q * s


@njit(cache=True, nogil=True)
def _box_sum(a, tmp, cs, out, y0, y1, x0, x1, r):
    """Box sums (half-width r) of plane a, written on [y0, y1) × [x0, x1) of out.

    Reads a up to r px around the rectangle (zero there unless written: the pad ring). Prefix
    sums along rows, then along columns, differenced 2r+1 apart: O(1) per pixel for any
    window. tmp and cs are scratch planes.
    """
    y0, y1, x0, x1 = np.uint64(y0), np.uint64(y1), np.uint64(x0), np.uint64(x1)
    r = np.uint64(r)
    r1 = r + _U1
    for i in range(y0 - r, y1 + r):
        acc = np.float32(0.0)
        cs[i, x0 - r1] = acc
        for j in range(x0 - r, x1 + r):
            acc += a[i, j]
            cs[i, j] = acc
        for j in range(x0, x1):
            tmp[i, j] = cs[i, j + r] - cs[i, j - r1]
    for j in range(x0, x1):
        cs[y0 - r1, j] = np.float32(0.0)
    for i in range(y0 - r, y1 + r):
        for j in range(x0, x1):
            cs[i, j] = cs[i - _U1, j] + tmp[i, j]
    for i in range(y0, y1):
        for j in range(x0, x1):
            out[i, j] = cs[i + r, j] - cs[i - r1, j]


@njit(cache=True, nogil=True)
def _upsample_flow(uc, vc, hc, wc, pad, u, v, y0, y1, x0, x1, fxs, ixs, hu, hv):
    """Bilinear ×2 upsampling of the coarse (hc, wc) flow onto [y0, y1) × [x0, x1); fine
    pixel j sits at coarse j/2 - 1/4 (2×2 means are centred between pixels).

    Each coarse row is first interpolated to the fine columns (hu, hv: scratch planes, rows
    indexed like the coarse ones), then pairs of those rows are blended: the same operations
    as a per-pixel bilinear lookup, with the gathers done once per coarse row. fxs, ixs: row
    scratch for the per-column weights and indices.
    """
    one = np.float32(1.0)
    two = np.float32(2.0)
    for j in range(x0, x1):
        xc = np.float32(0.5) * np.float32(j - pad) - np.float32(0.25)
        xc = min(max(xc, np.float32(0.0)), np.float32(wc - 1))
        ix = min(int(xc), wc - 2)
        fxs[j] = xc - np.float32(ix)
        ixs[j] = pad + ix
    ux0, ux1 = np.uint64(x0), np.uint64(x1)
    for a in range(np.uint64(pad), np.uint64(pad + hc)):
        for j in range(ux0, ux1):
            b = np.uint64(ixs[j])
            fx = fxs[j]
            hu[a, j] = (one - fx) * uc[a, b] + fx * uc[a, b + _U1]
            hv[a, j] = (one - fx) * vc[a, b] + fx * vc[a, b + _U1]
    for i in range(np.uint64(y0), np.uint64(y1)):
        yc = np.float32(0.5) * np.float32(i - np.uint64(pad)) - np.float32(0.25)
        yc = min(max(yc, np.float32(0.0)), np.float32(hc - 1))
        iy = min(int(yc), hc - 2)
        fy = yc - np.float32(iy)
        a = np.uint64(pad + iy)
        for j in range(ux0, ux1):
            u[i, j] = two * ((one - fy) * hu[a, j] + fy * hu[a + _U1, j])
            v[i, j] = two * ((one - fy) * hv[a, j] + fy * hv[a + _U1, j])


@njit(cache=True, nogil=True)
def _lk_level(ref, cur, h, w, pad, u, v, rect, ring, iterations, r, damp, planes, rows, idx):
    """Dense LK on one level (image (h, w) at offset pad, 1-px ring replicated).

    Solves u, v on rect = (y0, y1, x0, x1). With ring > 0 the rectangle's windows also read a
    ``ring``-px band around it whose flow stays fixed (the upsampled coarse one), so its
    residuals are computed once. rows (7, ·) float32 and idx (·,) int32 are row scratch.
    """
    gx, gy, g11, g12, g22 = planes[_GX], planes[_GY], planes[_G11], planes[_G12], planes[_G22]
    p1, p2, p3, s1, s2 = planes[_P1], planes[_P2], planes[_P3], planes[_S1], planes[_S2]
    tmp, cs = planes[_TMP], planes[_CS]
    fxr, fyr, c00, c01, c10, c11, xj = rows[0], rows[1], rows[2], rows[3], rows[4], rows[5], rows[6]
    y0, y1, x0, x1 = rect
    uy0, uy1, ux0, ux1 = np.uint64(y0), np.uint64(y1), np.uint64(x0), np.uint64(x1)
    ur = np.uint64(ring)
    half = np.float32(0.5)
    one = np.float32(1.0)
    for i in range(uy0 - ur, uy1 + ur):
        for j in range(ux0 - ur, ux1 + ur):
            ax = half * (ref[i, j + _U1] - ref[i, j - _U1])
            ay = half * (ref[i + _U1, j] - ref[i - _U1, j])
            gx[i, j] = ax
            gy[i, j] = ay
            p1[i, j] = ax * ax
            p2[i, j] = ax * ay
            p3[i, j] = ay * ay
    _box_sum(p1, tmp, cs, g11, y0, y1, x0, x1, r)
    _box_sum(p2, tmp, cs, g12, y0, y1, x0, x1, r)
    _box_sum(p3, tmp, cs, g22, y0, y1, x0, x1, r)
    # The bilinear warp runs in three row passes so that two of them vectorise: positions and
    # weights (float32/int32 only), the four gathers (scalar), the residual and products.
    flat = cur.reshape(cur.size)  # a view, for 1-D gathers
    stride = np.float32(cur.shape[1])  # flat index in float32: exact below 2^24 (checked)
    us = np.uint64(cur.shape[1])
    xmin, xmax = np.float32(pad), np.float32(pad + w - 1)
    ymin, ymax = np.float32(pad), np.float32(pad + h - 1)
    ixmax, iymax = np.int32(pad + w - 2), np.int32(pad + h - 2)
    for j in range(x0 - ring, x1 + ring):
        xj[j] = np.float32(j)
    for it in range(iterations):
        e0 = ur if it == 0 else np.uint64(0)  # the band's residuals once, on the first warp
        for i in range(uy0 - e0, uy1 + e0):
            fi = np.float32(i)
            for j in range(ux0 - e0, ux1 + e0):
                xs = min(max(xj[j] + u[i, j], xmin), xmax)
                ys = min(max(fi + v[i, j], ymin), ymax)
                ix = min(np.int32(xs), ixmax)
                iy = min(np.int32(ys), iymax)
                fxr[j] = xs - np.float32(ix)
                fyr[j] = ys - np.float32(iy)
                idx[j] = np.int32(np.float32(iy) * stride + np.float32(ix))
            for j in range(ux0 - e0, ux1 + e0):
                k = np.uint64(idx[j])
                c00[j] = flat[k]
                c01[j] = flat[k + _U1]
                c10[j] = flat[k + us]
                c11[j] = flat[k + us + _U1]
            for j in range(ux0 - e0, ux1 + e0):
                fx = fxr[j]
                fy = fyr[j]
                top = (one - fx) * c00[j] + fx * c01[j]
                bot = (one - fx) * c10[j] + fx * c11[j]
                e = (one - fy) * top + fy * bot - ref[i, j]
                ax = gx[i, j]
                ay = gy[i, j]
                # This pixel's estimate of its total flow, M·w - ∇I·e, so that each window
                # member votes for a translation rather than for a step at its own flow.
                c = ax * u[i, j] + ay * v[i, j] - e
                p1[i, j] = ax * c
                p2[i, j] = ay * c
        _box_sum(p1, tmp, cs, s1, y0, y1, x0, x1, r)
        _box_sum(p2, tmp, cs, s2, y0, y1, x0, x1, r)
        for i in range(uy0, uy1):
            for j in range(ux0, ux1):
                # Solve (A + damp·I) w = Σ(M·w - ∇I·e) + damp·w, A the windowed tensor.
                a11 = g11[i, j] + damp
                a12 = g12[i, j]
                a22 = g22[i, j] + damp
                inv = one / (a11 * a22 - a12 * a12)
                b1 = s1[i, j] + damp * u[i, j]
                b2 = s2[i, j] + damp * v[i, j]
                u[i, j] = (a22 * b1 - a12 * b2) * inv
                v[i, j] = (a11 * b2 - a12 * b1) * inv


@njit(cache=True, nogil=True)
def _pyramid_flow(pyr, planes, rows, idx, h0, w0, pad, rect, ring, iters, r, damps):
    """Coarse-to-fine flow from pyr[0, 0] (ref) to pyr[1, 0] (cur), images (h0, w0), left in
    pyr[2, 0], pyr[3, 0]. pyr (4, L, ·, ·): ref, cur, u, v per level; planes (L, 12, ·, ·).
    Coarser levels are solved whole; the finest on rect (y0, y1, x0, x1), with a fixed band
    of ``ring`` px around it (see _lk_level)."""
    levels = pyr.shape[1]
    for lv in range(levels):
        if lv > 0:
            _downsample(pyr[0, lv - 1], h0 >> (lv - 1), w0 >> (lv - 1), pad, pyr[0, lv])
            _downsample(pyr[1, lv - 1], h0 >> (lv - 1), w0 >> (lv - 1), pad, pyr[1, lv])
        _replicate_ring(pyr[0, lv], h0 >> lv, w0 >> lv, pad)
        _replicate_ring(pyr[1, lv], h0 >> lv, w0 >> lv, pad)
    for lv in range(levels - 1, -1, -1):
        h = h0 >> lv
        w = w0 >> lv
        lv_rect = rect if lv == 0 else (pad, pad + h, pad, pad + w)
        lv_ring = ring if lv == 0 else 0
        y0, y1 = lv_rect[0] - lv_ring, lv_rect[1] + lv_ring  # the band
        x0, x1 = lv_rect[2] - lv_ring, lv_rect[3] + lv_ring
        u = pyr[2, lv]
        v = pyr[3, lv]
        if lv == levels - 1:
            u[y0:y1, x0:x1] = np.float32(0.0)
            v[y0:y1, x0:x1] = np.float32(0.0)
        else:
            _upsample_flow(
                pyr[2, lv + 1],
                pyr[3, lv + 1],
                h0 >> (lv + 1),
                w0 >> (lv + 1),
                pad,
                u,
                v,
                y0,
                y1,
                x0,
                x1,
                rows[0],
                idx,
                planes[lv, _TMP],
                planes[lv, _CS],
            )
        _lk_level(
            pyr[0, lv],
            pyr[1, lv],
            h,
            w,
            pad,
            u,
            v,
            lv_rect,
            lv_ring,
            iters[lv],
            r,
            damps[lv],
            planes[lv],
            rows,
            idx,
        )


@njit(cache=True, nogil=True)
def _roi_flow(
    ref,
    cur,
    corners,
    patch,
    margin,
    iters,
    r,
    damps,
    k,
    pyr,
    planes,
    rows,
    idx,
    scratch,
    flow_out,
    strain_out,
    pooled_out,
):
    """Every ROI in one call; the buffers are RoiFlow's."""
    side = patch + 2 * margin
    pad = r + 1  # FlowConfig.pad
    lo, hi, ring = pad + margin - 1, pad + margin + patch + 1, min(r, margin - 1)  # finest_rect
    o = np.uint64(pad + margin)
    for roi in range(corners.shape[0]):
        cx, cy = corners[roi, 0] - margin, corners[roi, 1] - margin
        _extract(ref, cx, cy, side, pad, pyr[0, 0])
        _extract(cur, cx, cy, side, pad, pyr[1, 0])
        _pyramid_flow(
            pyr, planes, rows, idx, side, side, pad, (lo, hi, lo, hi), ring, iters, r, damps
        )
        u, v = pyr[2, 0], pyr[3, 0]
        _strain(u, v, o, o, strain_out[roi])
        for i in range(np.uint64(patch)):
            for j in range(np.uint64(patch)):
                flow_out[roi, i, j, 0] = u[o + i, o + j]
                flow_out[roi, i, j, 1] = v[o + i, o + j]
        _pool(flow_out[roi], strain_out[roi], k, scratch, pooled_out[roi])
