"""Numba kernels that turn a solved flow patch into features: strain, and the mean of the
strongest vectors (``stream/face/flow.py`` explains the pooling; ``flow_ref.py`` mirrors it).

Like ``flow_kernels.py``: ``@njit(cache=True, nogil=True)``, buffers given, nothing allocated.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_U1 = np.uint64(1)  # uint64 steps keep the hot loops unsigned (see flow_kernels.py)


@njit(cache=True, nogil=True)
def _strain(u, v, y0, x0, out):
    """Strain magnitude of the flow's (P, P) block at (y0, x0) into out (P, P), by central
    differences (the solved square reaches 1 px past the patch)."""
    p = np.uint64(out.shape[0])
    half = np.float32(0.5)
    for i in range(p):
        a = np.uint64(y0) + i
        for j in range(p):
            b = np.uint64(x0) + j
            exx = (u[a, b + _U1] - u[a, b - _U1]) * half
            eyy = (v[a + _U1, b] - v[a - _U1, b]) * half
            shear = (u[a + _U1, b] - u[a - _U1, b]) * half + (v[a, b + _U1] - v[a, b - _U1]) * half
            out[i, j] = np.sqrt(exx * exx + eyy * eyy + half * shear * shear)  # shear = 2·exy


@njit(cache=True, nogil=True)
def _kth_largest(a, k):
    """k-th largest (1-based) of a, by in-place quickselect (a is scratch)."""
    lo, hi, target = 0, a.size - 1, k - 1  # target: index in descending order
    while lo < hi:
        x, y, z = a[lo], a[(lo + hi) // 2], a[hi]
        pivot = max(min(x, y), min(max(x, y), z))  # median of three: flat patches stay O(n)
        i, j = lo, hi
        while i <= j:
            while a[i] > pivot:
                i += 1
            while a[j] < pivot:
                j -= 1
            if i <= j:
                a[i], a[j] = a[j], a[i]
                i += 1
                j -= 1
        if target <= j:
            hi = j
        elif target >= i:
            lo = i
        else:
            break
    return a[target]


@njit(cache=True, nogil=True)
def _pool(flow, strain, k, scratch, out):
    """out (4,) = means of dx, dy, |d| and strain over the k strongest vectors of flow
    (P, P, 2); scratch (2, P·P): magnitudes in raster order and a copy to select in."""
    p = flow.shape[0]
    mag, sel = scratch[0], scratch[1]
    for i in range(p):
        for j in range(p):
            dx, dy = flow[i, j, 0], flow[i, j, 1]
            mag[i * p + j] = sel[i * p + j] = np.sqrt(dx * dx + dy * dy)
    t = _kth_largest(sel, k)
    sx = sy = sm = ss = 0.0  # float64 sums
    taken = 0
    for tie in range(2):  # strictly above the k-th first, then ties in raster order
        for q in range(p * p):
            m = mag[q]
            if taken < k and (m > t if tie == 0 else m == t):
                i, j = q // p, q % p
                sx += flow[i, j, 0]
                sy += flow[i, j, 1]
                sm += m
                ss += strain[i, j]
                taken += 1
    out[0], out[1], out[2], out[3] = sx / k, sy / k, sm / k, ss / k


@njit(cache=True, nogil=True)
def pool_relative(flow, strain, anchor, k, scratch, work, out):
    """Pool every ROI but ``anchor`` after subtracting the anchor's mean flow (head motion).

    flow (R, P, P, 2), strain (R, P, P); work (P, P, 2) scratch; out (R, 4) (the anchor's row
    holds its own mean flow and zeros). Returns nothing: ``out`` is written.
    """
    n, p = flow.shape[0], flow.shape[1]
    ax = ay = 0.0
    for i in range(p):
        for j in range(p):
            ax += flow[anchor, i, j, 0]
            ay += flow[anchor, i, j, 1]
    ax /= p * p
    ay /= p * p
    for roi in range(n):
        if roi == anchor:
            out[roi, 0], out[roi, 1], out[roi, 2], out[roi, 3] = ax, ay, 0.0, 0.0
            continue
        for i in range(p):
            for j in range(p):
                work[i, j, 0] = flow[roi, i, j, 0] - ax
                work[i, j, 1] = flow[roi, i, j, 1] - ay
        _pool(work, strain[roi], k, scratch, out[roi])
