"""ROI optical flow: Numba kernels against the NumPy reference, accuracy on known sub-pixel
warps, strain and pooling semantics, determinism and the no-allocation per-frame path.

Parity tolerance: ATOL = 1e-5 px (flow), 1e-5 (strain, pooled). The reference repeats the
kernels' float32 operations in the same order, so the two agree bit for bit on this machine;
the tolerance only leaves room for another CPU's rounding.
"""

from __future__ import annotations

import tracemalloc

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from skimage import data

from stream.face.flow import FlowConfig, RoiFlow, dense_flow, warm_up
from stream.face.flow_pool import _pool, _strain
from stream.face.flow_ref import (
    _pool as pool_ref,
)
from stream.face.flow_ref import (
    dense_flow_ref,
    roi_flow_ref,
    smooth_displacement,
    warp_pair,
)

ATOL = 1e-5
SIZE = 160
# The 14 canonical 24-px ROI patches of a 160-px aligned face (top-left x, y).
CORNERS = np.array(
    [
        [24, 21],
        [53, 19],
        [83, 19],
        [112, 21],
        [24, 46],
        [112, 46],
        [50, 75],
        [85, 75],
        [40, 88],
        [95, 88],
        [47, 101],
        [88, 101],
        [67, 125],
        [68, 47],
    ],
    np.int32,
)  # (14, 2)


@pytest.fixture(scope="module", autouse=True)
def compiled() -> None:
    warm_up()


def astronaut_face() -> np.ndarray:
    """skimage's astronaut, cropped to a 160-px face roughly where the aligner puts it."""
    gray = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2GRAY)[45:205, 143:303]
    return (gray / 255.0).astype(np.float32)  # (160, 160)


def texture(seed: int = 7, shape: tuple[int, int] = (SIZE, SIZE)) -> np.ndarray:
    """Blurred noise stretched to 0..1: texture at every pixel, no aperture problem."""
    noise = np.random.default_rng(seed).random(shape, dtype=np.float32)
    blurred = cv2.GaussianBlur(noise, (0, 0), 1.5)
    return ((blurred - blurred.min()) / (blurred.max() - blurred.min())).astype(np.float32)


def constant(shape: tuple[int, int], dx: float, dy: float) -> np.ndarray:
    field = np.zeros((*shape, 2), np.float32)  # (H, W, 2)
    field[..., 0], field[..., 1] = dx, dy
    return field


def patches(field: np.ndarray, corners: np.ndarray = CORNERS, p: int = 24) -> np.ndarray:
    return np.stack([field[y : y + p, x : x + p] for x, y in corners])  # (R, P, P, 2)


def epe(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(((a - b) ** 2).sum(-1)).mean())


def assert_parity(ref, cur, corners, config) -> None:
    roi_flow = RoiFlow(config, n_rois=len(corners))
    pooled = roi_flow.compute(ref, cur, corners)
    pooled_r, flow_r, strain_r = roi_flow_ref(ref, cur, corners, config)
    np.testing.assert_allclose(roi_flow.flow, flow_r, rtol=0, atol=ATOL)
    np.testing.assert_allclose(roi_flow.strain, strain_r, rtol=0, atol=ATOL)
    np.testing.assert_allclose(pooled, pooled_r, rtol=0, atol=ATOL)


# ------------------------------------------------------------------ Numba vs reference ---


@pytest.mark.parametrize(
    "config",
    [
        FlowConfig(),  # the defaults the pipeline runs
        FlowConfig(levels=1),  # no pyramid: the band around the patch stays at zero flow
        FlowConfig(levels=3, coarse_iterations=None, window=3),  # deeper pyramid, 3 warps each
        FlowConfig(patch=15, margin=2, window=4),  # odd patch; band clipped by a thin margin
        FlowConfig(top_fraction=1.0, damping=1e-4),  # pool everything; strong damping
    ],
)
def test_roi_flow_matches_reference_on_random_warps(config: FlowConfig) -> None:
    ref = texture(3)
    cur = warp_pair(ref, smooth_displacement(ref.shape, 2.0, seed=11))
    # The last corners put patch and margin past the image: border replication.
    corners = np.concatenate([CORNERS[:5], [[0, 0], [SIZE - config.patch, SIZE - 10]]])
    assert_parity(ref, cur, corners.astype(np.int32), config)


def test_roi_flow_matches_reference_on_a_real_face() -> None:
    face = astronaut_face()
    cur = warp_pair(face, smooth_displacement(face.shape, 1.5, seed=5))
    assert_parity(face, cur, CORNERS, FlowConfig())


def test_roi_flow_matches_reference_on_a_fixture_face(fixtures_dir) -> None:
    from stream.face.models import detect_largest_face

    cap = cv2.VideoCapture(str(sorted((fixtures_dir / "videos").glob("*.mp4"))[0]))
    ok, bgr = cap.read()
    cap.release()
    assert ok
    left, top, right, bottom = detect_largest_face(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    gray = cv2.cvtColor(bgr[max(top, 0) : bottom, max(left, 0) : right], cv2.COLOR_BGR2GRAY)
    face = (cv2.resize(gray, (SIZE, SIZE), interpolation=cv2.INTER_AREA) / 255.0).astype(np.float32)
    cur = warp_pair(face, smooth_displacement(face.shape, 2.5, seed=9))
    assert_parity(face, cur, CORNERS, FlowConfig())


def test_dense_flow_matches_reference() -> None:
    ref = texture(4, (48, 64))  # not square, not a multiple of the pyramid's 4
    cur = warp_pair(ref, smooth_displacement(ref.shape, 2.0, seed=2))
    for config in (FlowConfig(), FlowConfig(levels=3, coarse_iterations=None, window=2)):
        np.testing.assert_allclose(
            dense_flow(ref, cur, config), dense_flow_ref(ref, cur, config), rtol=0, atol=ATOL
        )


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    patch=st.integers(2, 20),
    margin=st.integers(1, 9),
    window=st.integers(1, 5),
    levels=st.integers(1, 3),
    seed=st.integers(0, 2**16),
)
def test_roi_flow_matches_reference_hypothesis(patch, margin, window, levels, seed) -> None:
    side = patch + 2 * margin
    levels = min(levels, side.bit_length() - 1)  # the coarsest level keeps ≥ 2 px
    config = FlowConfig(patch=patch, margin=margin, window=window, levels=levels)
    rng = np.random.default_rng(seed)
    h, w = rng.integers(patch + 1, 70, size=2)
    ref = texture(seed, (int(h), int(w)))
    cur = warp_pair(ref, smooth_displacement(ref.shape, rng.uniform(0.1, 3.0), seed))
    corners = np.stack([rng.integers(-margin, w, 4), rng.integers(-margin, h, 4)], axis=1).astype(
        np.int32
    )  # (4, 2), some reaching past the image
    assert_parity(ref, cur, corners, config)


# ------------------------------------------------------------------------- accuracy ---


def test_warp_pair_gives_the_stated_ground_truth() -> None:
    """ref(x) = cur(x + d(x)): resampling cur at x + d gives ref back, up to the blur of two
    bilinear resamplings; the opposite convention (x - d) does not."""
    ref = texture(1)
    gt = smooth_displacement(ref.shape, 3.0, seed=3)
    cur = warp_pair(ref, gt)
    ys, xs = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)

    def error(sign: float) -> float:
        back = cv2.remap(cur, xs + sign * gt[..., 0], ys + sign * gt[..., 1], cv2.INTER_LINEAR)
        return float(np.abs(back - ref)[8:-8, 8:-8].mean())

    assert error(1.0) < 0.02 and error(1.0) < 0.2 * error(-1.0)
    assert np.abs(np.sqrt((gt**2).sum(-1)).max() - 3.0) < 1e-4


@pytest.mark.parametrize(
    ("image", "roi_bound", "full_bound"),
    [
        ("texture", 0.10, 0.10),  # textured everywhere: ≈ 0.06 px measured
        ("face", 0.20, 0.25),  # flat skin: ≈ 0.12 / 0.15 px measured
    ],
)
def test_epe_on_smooth_sub_pixel_warps(image, roi_bound, full_bound) -> None:
    """Mean endpoint error over three smooth fields of 0.5, 1.5 and 3 px (largest vector):
    on the ROI patches (RoiFlow) and on the whole image less an 8-px border (dense_flow)."""
    ref = texture() if image == "texture" else astronaut_face()
    roi_flow = RoiFlow(FlowConfig(), n_rois=len(CORNERS))
    roi_errors, full_errors = [], []
    for seed, max_px in enumerate((0.5, 1.5, 3.0)):
        gt = smooth_displacement(ref.shape, max_px, seed=1000 + seed)
        cur = warp_pair(ref, gt)
        roi_flow.compute(ref, cur, CORNERS)
        roi_errors.append(epe(roi_flow.flow, patches(gt)))
        full_errors.append(epe(dense_flow(ref, cur)[8:-8, 8:-8], gt[8:-8, 8:-8]))
    assert np.mean(roi_errors) < roi_bound, roi_errors
    assert np.mean(full_errors) < full_bound, full_errors
    assert max(roi_errors) < 2 * roi_bound, roi_errors


@pytest.mark.parametrize("shift", [(0.5, 0.0), (0.0, 0.5), (-0.5, 0.5)])
def test_constant_half_pixel_translation_is_recovered(shift) -> None:
    """Within 0.05 px. On texture: every patch's median vector and the mean per-pixel error.
    On the face: the median over all patches (flat skin and the collar's single edge leave
    single patches under-determined, which no local method escapes)."""
    roi_flow = RoiFlow(FlowConfig(), n_rois=len(CORNERS))
    ref = texture()
    gt = constant(ref.shape, *shift)
    roi_flow.compute(ref, warp_pair(ref, gt), CORNERS)
    medians = np.median(roi_flow.flow.reshape(len(CORNERS), -1, 2), axis=1)  # (R, 2)
    assert np.abs(medians - shift).max() < 0.05, medians
    assert epe(roi_flow.flow, patches(gt)) < 0.05
    face = astronaut_face()
    roi_flow.compute(face, warp_pair(face, constant(face.shape, *shift)), CORNERS)
    assert np.abs(np.median(roi_flow.flow.reshape(-1, 2), axis=0) - shift).max() < 0.05


def test_zero_motion_gives_zero_flow_and_strain() -> None:
    face = astronaut_face()
    roi_flow = RoiFlow(FlowConfig(), n_rois=len(CORNERS))
    pooled = roi_flow.compute(face, face.copy(), CORNERS)
    assert not roi_flow.flow.any() and not roi_flow.strain.any() and not pooled.any()
    assert not dense_flow(face, face).any()


# --------------------------------------------------------------------------- strain ---


def _strain_of(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """The kernel's strain of the inner (P, P) block of (P + 2, P + 2) fields."""
    out = np.zeros((u.shape[0] - 2, u.shape[1] - 2), np.float32)
    _strain(u.astype(np.float32), v.astype(np.float32), 1, 1, out)
    return out


@pytest.mark.parametrize(
    ("u", "v", "expected"),
    [
        (lambda y, x: 0.7 + 0 * x, lambda y, x: -0.2 + 0 * x, 0.0),  # translation
        (lambda y, x: 0.03 * x, lambda y, x: 0 * x, 0.03),  # stretch along x: exx
        (lambda y, x: 0.03 * x, lambda y, x: 0.03 * y, 0.03 * np.sqrt(2)),  # uniform scaling
        (lambda y, x: 0.04 * y, lambda y, x: 0 * x, 0.04 / np.sqrt(2)),  # simple shear: exy
        (lambda y, x: -0.05 * y, lambda y, x: 0.05 * x, 0.0),  # rotation: no strain
    ],
)
def test_strain_of_linear_fields_is_analytic(u, v, expected) -> None:
    y, x = np.mgrid[0:12, 0:12].astype(np.float64)
    strain = _strain_of(u(y, x), v(y, x))
    np.testing.assert_allclose(strain, expected, atol=1e-6)


def test_strain_end_to_end_translation_and_stretch() -> None:
    """Estimated on texture: ≈ 0 for a translation, ≈ a·√2 for a uniform stretch by 1 + a."""
    ref = texture()
    roi_flow = RoiFlow(FlowConfig(), n_rois=len(CORNERS))
    roi_flow.compute(ref, warp_pair(ref, constant(ref.shape, 0.7, -0.4)), CORNERS)
    assert roi_flow.strain.mean() < 0.03
    a = 0.03
    ys, xs = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    stretch = np.stack([a * (xs - SIZE / 2), a * (ys - SIZE / 2)], axis=-1)  # (H, W, 2)
    roi_flow.compute(ref, warp_pair(ref, stretch), CORNERS)
    assert abs(np.median(roi_flow.strain) - a * np.sqrt(2)) < 0.2 * a * np.sqrt(2)


# -------------------------------------------------------------------------- pooling ---


def _pooled(flow: np.ndarray, strain: np.ndarray, k: int) -> np.ndarray:
    out = np.zeros(4, np.float32)
    scratch = np.zeros((2, flow.shape[0] * flow.shape[1]), np.float32)
    _pool(flow, strain, k, scratch, out)
    np.testing.assert_allclose(out, pool_ref(flow, strain, k), rtol=0, atol=1e-6)
    return out


def test_pooling_averages_exactly_the_strongest_top_fraction() -> None:
    p = 10
    k = FlowConfig(patch=p).top_k  # 30 % of 100
    assert k == 30
    rng = np.random.default_rng(0)
    angle = rng.uniform(0, 2 * np.pi, (p, p))
    mag = rng.uniform(0.0, 1.0, (p, p))  # the weak 70 %
    strong = rng.choice(p * p, size=k, replace=False)
    mag.flat[strong] = rng.uniform(2.0, 3.0, k)  # the strong 30 %, scattered
    flow = np.stack([mag * np.cos(angle), mag * np.sin(angle)], axis=-1).astype(np.float32)
    strain = rng.uniform(0, 1, (p, p)).astype(np.float32)
    pooled = _pooled(flow, strain, k)
    top = flow.reshape(-1, 2)[strong]  # (k, 2)
    expected = [*top.mean(0), np.sqrt((top**2).sum(-1)).mean(), strain.flat[strong].mean()]
    np.testing.assert_allclose(pooled, expected, rtol=1e-5, atol=1e-6)


def test_pooling_breaks_magnitude_ties_in_raster_order() -> None:
    p, k = 4, 5
    # Sixteen vectors of magnitude exactly 5 (integer Pythagorean pairs), in varied directions.
    unit = [(5, 0), (0, 5), (-5, 0), (0, -5), (3, 4), (4, 3), (-3, 4), (-4, 3)]
    vectors = unit + [(-x, -y) for x, y in unit[4:]] + [(3, -4), (4, -3), (-3, -4), (-4, -3)]
    flow = np.array(vectors, np.float32).reshape(p, p, 2)
    strain = np.arange(p * p, dtype=np.float32).reshape(p, p)
    pooled = _pooled(flow, strain, k)
    first = flow.reshape(-1, 2)[:k]  # (k, 2): the first five in raster order
    np.testing.assert_allclose(pooled, [*first.mean(0), 5.0, strain.flat[:k].mean()], atol=1e-6)


# ---------------------------------------------------------------- runtime behaviour ---


def test_same_inputs_give_identical_outputs() -> None:
    face = astronaut_face()
    cur = warp_pair(face, smooth_displacement(face.shape, 2.0, seed=4))
    other = warp_pair(face, smooth_displacement(face.shape, 1.0, seed=8))
    a = RoiFlow(FlowConfig(), n_rois=16)
    first = (a.compute(face, cur, CORNERS).copy(), a.flow.copy(), a.strain.copy())
    a.compute(face, other, CORNERS[::-1].copy())  # reuse every buffer in between
    again = (a.compute(face, cur, CORNERS).copy(), a.flow.copy(), a.strain.copy())
    b = RoiFlow(FlowConfig(), n_rois=16)
    fresh = (b.compute(face, cur, CORNERS).copy(), b.flow.copy(), b.strain.copy())
    for x, y, z in zip(first, again, fresh, strict=True):
        assert np.array_equal(x, y) and np.array_equal(x, z)


def test_compute_allocates_no_arrays_per_frame() -> None:
    face = astronaut_face()
    cur = warp_pair(face, smooth_displacement(face.shape, 2.0, seed=4))
    roi_flow = RoiFlow(FlowConfig(), n_rois=len(CORNERS))
    roi_flow.compute(face, cur, CORNERS)
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        for _ in range(20):
            roi_flow.compute(face, cur, CORNERS)
        grown = sum(s.size_diff for s in tracemalloc.take_snapshot().compare_to(before, "filename"))
    finally:
        tracemalloc.stop()
    assert grown < 4096  # one small view per call at most, never an image-sized buffer


def test_shapes_views_and_errors() -> None:
    face = astronaut_face()
    roi_flow = RoiFlow(FlowConfig(), n_rois=16)
    pooled = roi_flow.compute(face, face, CORNERS[:3])
    assert pooled.shape == (3, 4) and pooled.dtype == np.float32
    assert roi_flow.flow.shape == (3, 24, 24, 2) and roi_flow.strain.shape == (3, 24, 24)
    with pytest.raises(ValueError, match="ROIs"):
        RoiFlow(FlowConfig(), n_rois=2).compute(face, face, CORNERS)
    with pytest.raises(TypeError):
        roi_flow.compute(face.astype(np.float64), face, CORNERS)
    for bad in (dict(margin=0), dict(window=0), dict(top_fraction=0.0), dict(levels=9)):
        with pytest.raises(ValueError):
            FlowConfig(**bad)


def test_pool_relative_matches_the_reference_after_removing_the_anchor():
    from stream.face.flow_ref import _pool as pool_ref

    rng = np.random.default_rng(21)
    ref = rng.random((160, 160), dtype=np.float32)
    cur = np.roll(ref, 1, axis=1)  # everything moves: the anchor sees it too
    corners = np.array([[20, 20], [60, 40], [100, 90], [40, 110]], np.int32)
    roi_flow = RoiFlow(FlowConfig(), n_rois=4)
    roi_flow.compute(ref, cur, corners)
    relative = roi_flow.pool_relative(anchor=1)
    anchor_mean = roi_flow.flow[1].reshape(-1, 2).mean(0)
    np.testing.assert_allclose(relative[1, :2], anchor_mean, atol=1e-5)  # tolerance: float32 sums
    for roi in (0, 2, 3):
        expected = pool_ref(
            roi_flow.flow[roi] - anchor_mean, roi_flow.strain[roi], FlowConfig().top_k
        )
        np.testing.assert_allclose(relative[roi], expected, atol=1e-5)
