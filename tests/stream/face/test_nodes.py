"""Landmark-local flow nodes (stream/face/nodes.py): the node table, the disk sampler on known
fields, the robust rigid fit, Numba against the NumPy reference, reference choice by timestamp,
gaps, and the allocation-free frame path.

Tolerances, in px of the 160-px aligned face:
- sampler on an affine field: 1e-4 (its stencil is symmetric: an affine field is exact);
- sampler on Gaussian bumps of σ 8 px: 7 % of the peak (the sampler is a ~2-px Gaussian blur;
  measured 4 %);
- rigid fit on an exact affine field: residual 1e-3, linear parameters 1e-5;
- Numba vs NumPy reference: PARITY_PX = 1e-4 (both float64 inside; only the summation order
  differs, so they agree to ~1e-6);
- whole NodeFlow (Lucas–Kanade) on a warped textured face: mean error 0.12 px, worst 0.4 px
  (flow error; measured 0.05 / 0.28); on a warped real photo (slow): 0.3 / 1.0 px; the same
  motion at 25 and 100 fps with independent noise: 0.15 px apart (measured 0.06).
"""

from __future__ import annotations

import tracemalloc

import cv2
import numpy as np
import pytest

from stream.contracts import AlignedFace
from stream.face.flow import dense_flow
from stream.face.flow_ref import warp_pair
from stream.face.nodes import (
    GROUPS,
    N_NODES,
    NODE_GROUPS,
    NODE_NAMES,
    STABLE_NODES,
    LKFlow,
    NodeConfig,
    NodeFlow,
    node_positions,
    node_residual,
)
from stream.face.nodes_ref import node_residual_ref
from stream.face.rois import IOD, canonical_landmarks

SIZE = 160
PARITY_PX = 1e-4
LANDMARKS = canonical_landmarks(SIZE)  # (68, 2)
POSITIONS = node_positions(LANDMARKS, SIZE)  # (N, 2)
YS, XS = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)  # (S, S) each


def affine_field(params) -> np.ndarray:
    """(S, S, 2) field (a·x + b·y + tx, c·x + d·y + ty)."""
    a, b, tx, c, d, ty = params
    return np.stack([a * XS + b * YS + tx, c * XS + d * YS + ty], -1).astype(np.float32)


def bumps_field(centres, amplitude, sigma, direction=(0.6, 0.8)) -> np.ndarray:
    """(S, S, 2) sum of Gaussian bumps of peak ``amplitude`` px at centres (K, 2)."""
    field = np.zeros((SIZE, SIZE, 2), np.float32)
    for x, y in centres:
        bump = np.exp(-((XS - x) ** 2 + (YS - y) ** 2) / (2 * sigma**2))  # (S, S)
        field += amplitude * bump[..., None] * np.asarray(direction, np.float32)
    return field


def textured_face(seed: int = 0) -> np.ndarray:
    """(S, S) uint8 skin-like texture: blurred noise at 1, 2 and 4 px."""
    rng = np.random.default_rng(seed)
    image = sum(
        cv2.GaussianBlur(rng.standard_normal((SIZE, SIZE)), (0, 0), s) * s for s in (1, 2, 4)
    )
    image = (image - image.mean()) / image.std()
    return np.clip(128 + 30 * image, 0, 255).astype(np.uint8)


def aligned(face, t_s, seq=0, ok=True, landmarks=LANDMARKS, **kw) -> AlignedFace:
    return AlignedFace(seq, 0, face if ok else None, landmarks if ok else None, ok, t_s=t_s, **kw)


def nodes_of(group: str) -> list[int]:
    return [i for i, g in enumerate(NODE_GROUPS) if g == group and i not in STABLE_NODES]


# ------------------------------------------------------------------------------ the table ---


def test_node_table() -> None:
    assert 40 <= N_NODES <= 60 and len(set(NODE_NAMES)) == N_NODES
    assert set(NODE_GROUPS) == set(GROUPS)
    ridge = {"nose_root", "nose_ridge_upper", "nose_ridge_lower", "nose_tip", "nose_base"}
    stable = ridge | {"eye_inner_l", "eye_inner_r", "temple_l", "temple_r"}
    assert {NODE_NAMES[i] for i in STABLE_NODES} == stable
    radius = NodeConfig().radius_px
    assert (radius <= POSITIONS).all() and (SIZE - radius >= POSITIONS).all()  # disks inside
    for i, name in enumerate(NODE_NAMES):  # mirror pairs sit symmetric about the face's axis
        if name.endswith("_l"):
            j = NODE_NAMES.index(name[:-2] + "_r")
            mirrored = np.array([SIZE - 1 - POSITIONS[j, 0], POSITIONS[j, 1]])
            assert np.abs(POSITIONS[i] - mirrored).max() < 0.06 * IOD * SIZE, name


# -------------------------------------------------------------------- (a) known fields ---


def bumps_at(x, y, centres, amplitude, sigma, direction=(0.6, 0.8)):
    """The value at (x, y) of ``bumps_field`` (an analytic function of position)."""
    total = sum(np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * sigma**2)) for cx, cy in centres)
    return amplitude * np.stack([direction[0] * total, direction[1] * total], -1)


@pytest.mark.parametrize(
    "shape, tol",
    [
        ((0.0, 0.0, 1.3, 0.0, 0.0, -0.7), 1e-4),  # a pure shift: exact
        ((0.02, -0.01, 0.5, 0.015, -0.02, 0.3), 1e-4),  # an affine field: exact
        ("bumps", 0.07 * 2.0),  # 2-px Gaussian bumps of σ 8 px: the sampler's blur loses ≤ 7 %
    ],
)
def test_sampler_returns_known_field(shape, tol: float) -> None:
    x, y = POSITIONS[:, 0].astype(np.float64), POSITIONS[:, 1].astype(np.float64)
    if shape == "bumps":
        centres = POSITIONS[[5, 30, 45]]
        field, exact = bumps_field(centres, 2.0, 8.0), bumps_at(x, y, centres, 2.0, 8.0)
    else:
        a, b, tx, c, d, ty = shape
        field, exact = affine_field(shape), np.stack([a * x + b * y + tx, c * x + d * y + ty], -1)
    sampled, _, _ = node_residual(field, POSITIONS)  # (N, 2)
    assert np.abs(sampled - exact).max() < tol


def test_sampler_on_upsampled_field() -> None:
    """A field computed on the face upsampled ×2 (``scale`` 2): same node values, in face px."""
    params = (0.02, -0.01, 0.5, 0.015, -0.02, 0.3)
    ys, xs = (np.mgrid[0 : 2 * SIZE, 0 : 2 * SIZE].astype(np.float32) + 0.5) / 2 - 0.5
    a, b, tx, c, d, ty = params
    up = 2 * np.stack([a * xs + b * ys + tx, c * xs + d * ys + ty], -1).astype(np.float32)
    sampled, _, _ = node_residual(up, POSITIONS, scale=2)
    expected, _, _ = node_residual(affine_field(params), POSITIONS)
    assert np.abs(sampled - expected).max() < 1e-4


def test_node_flow_on_warped_textured_face() -> None:
    """The whole front end (Lucas–Kanade, sampling, rigid fit) on a known warp."""
    face = textured_face().astype(np.float32)
    bumps = bumps_field(POSITIONS[nodes_of("mouth")[:3]], 1.5, 0.15 * IOD * SIZE)
    rigid = affine_field((0.01, -0.008, 0.4, 0.006, 0.012, -0.6))
    cur = np.clip(np.rint(warp_pair(face, bumps + rigid)), 0, 255).astype(np.uint8)
    nodes = NodeFlow()
    nodes.update(aligned(face.astype(np.uint8), 0.0))
    row = nodes.update(aligned(cur, 0.04))
    assert row.valid.tolist() == [True, False, False]
    truth, _, _ = node_residual(bumps, POSITIONS)  # (N, 2) the bumps as the sampler sees them
    error = np.linalg.norm(row.residual[0] - truth, axis=1)  # (N,)
    assert error.mean() < 0.12 and error.max() < 0.4
    moved = np.linalg.norm(truth, axis=1) > 0.75
    assert (np.linalg.norm(row.residual[0][moved], axis=1) > 0.6).all()


@pytest.mark.slow
def test_node_flow_on_warped_real_face(fixtures_dir) -> None:
    """The same on a real photo, aligned by FaceTracker, with sensor noise (σ 1 grey level):
    skin has less texture than the synthetic face, so the bound is looser (measured 0.21 /
    0.64 px)."""
    from stream.face.align import FaceTracker

    aligned_photo = FaceTracker().update(cv2.imread(str(fixtures_dir / "photos/lp_s1.jpg")), 0, 0)
    assert aligned_photo.ok
    landmarks, face = aligned_photo.landmarks, aligned_photo.face.astype(np.float32)
    positions = node_positions(landmarks)  # (N, 2)
    bumps = bumps_field(positions[nodes_of("mouth")[:3]], 1.5, 0.15 * IOD * SIZE)
    rigid = affine_field((0.01, -0.008, 0.4, 0.006, 0.012, -0.6))
    rng = np.random.default_rng(0)
    ref, cur = (
        np.clip(np.rint(image + rng.normal(0, 1, face.shape)), 0, 255).astype(np.uint8)
        for image in (face, warp_pair(face, bumps + rigid))
    )
    nodes = NodeFlow()
    nodes.update(aligned(ref, 0.0, landmarks=landmarks))
    row = nodes.update(aligned(cur, 0.04, landmarks=landmarks))
    truth, _, _ = node_residual(bumps, positions)
    error = np.linalg.norm(row.residual[0] - truth, axis=1)  # (N,)
    assert error.mean() < 0.3 and error.max() < 1.0


# -------------------------------------------------------------------- (b) the rigid fit ---


@pytest.mark.parametrize(
    "params",
    [
        (0.0, 0.0, 2.5, 0.0, 0.0, -1.5),  # translation only
        (0.01, -0.02, 0.3, 0.02, 0.01, -0.2),  # rotation 1.1° and 1 % scale
        (0.03, 0.005, -1.0, -0.004, -0.01, 0.8),  # non-similar: a yaw's horizontal squeeze
        (0.0, 0.0, 6.0, 0.0, 0.0, 4.0),  # a big head jump
    ],
)
def test_pure_affine_gives_zero_residual(params) -> None:
    _, residual, affine = node_residual(affine_field(params), POSITIONS)
    assert np.abs(residual).max() < 1e-3
    np.testing.assert_allclose(affine[[0, 1, 3, 4]], np.array(params)[[0, 1, 3, 4]], atol=1e-5)
    np.testing.assert_allclose(affine[[2, 5]], np.array(params)[[2, 5]], atol=1e-3)


@pytest.mark.parametrize("group", GROUPS)
def test_local_bump_survives_the_fit(group: str) -> None:
    """Affine head motion plus a 1.5-px bump on each of one group's nodes: the residual holds
    the bumps there and ≈ 0 elsewhere."""
    rigid = (0.015, -0.01, 1.2, 0.01, 0.02, -0.8)
    centres = POSITIONS[nodes_of(group)]
    bumps = bumps_field(centres, 1.5, 3.0)
    _, residual, affine = node_residual(bumps + affine_field(rigid), POSITIONS)
    truth, _, _ = node_residual(bumps, POSITIONS)
    assert np.abs(residual - truth).max() < 0.02
    assert (np.linalg.norm(residual[nodes_of(group)], axis=1) > 1.0).all()
    far = np.min(np.linalg.norm(POSITIONS[:, None] - centres[None], axis=2), axis=1) > 12.0
    assert np.abs(residual[far]).max() < 0.02
    np.testing.assert_allclose(affine[[0, 1, 3, 4]], np.array(rigid)[[0, 1, 3, 4]], atol=2e-4)


@pytest.mark.parametrize(
    "corrupted",
    [
        ("temple_l", "temple_r"),  # both ends of the fit's widest lever
        ("nose_root", "nose_tip"),  # two of the ridge, vertical lever
        ("eye_inner_l", "nose_base"),  # one canthus and the nose base
    ],
)
def test_fit_outvotes_corrupted_stable_nodes(corrupted) -> None:
    """2 of 9 stable nodes (22 %) get a 3-px patch of bad flow (3 px across: it stays off the
    next node's disk, 8 px away on the nose): the fit ignores them, so every other node keeps
    ≈ 0 residual and the corrupted ones keep their own motion."""
    rigid = (0.012, -0.015, 0.8, 0.01, 0.008, -1.1)
    idx = [NODE_NAMES.index(name) for name in corrupted]
    outliers = np.zeros((SIZE, SIZE, 2), np.float32)
    for x, y in POSITIONS[idx]:
        outliers[(XS - x) ** 2 + (YS - y) ** 2 <= 3.0**2] = (3.0, -2.0)
    field = outliers + affine_field(rigid)
    sampled, residual, affine = node_residual(field, POSITIONS)
    np.testing.assert_allclose(affine[[0, 1, 3, 4]], np.array(rigid)[[0, 1, 3, 4]], atol=1e-5)
    np.testing.assert_allclose(affine[[2, 5]], np.array(rigid)[[2, 5]], atol=1e-3)
    others = np.setdiff1d(np.arange(N_NODES), idx)
    assert np.abs(residual[others]).max() < 1e-3
    np.testing.assert_allclose(residual[idx], node_residual(outliers, POSITIONS)[0][idx], atol=1e-3)
    # Plain least squares on the same nodes tilts the whole face (the test has teeth):
    stable = list(STABLE_NODES)
    design = np.column_stack([POSITIONS[stable], np.ones(len(stable))])  # (M, 3)
    plain = np.linalg.lstsq(design, sampled[stable], rcond=None)[0]  # (3, 2)
    plain_residual = sampled - np.column_stack([POSITIONS, np.ones(N_NODES)]) @ plain  # (N, 2)
    assert np.abs(plain_residual[others]).max() > 0.2


# ---------------------------------------------------------------- (c) Numba vs reference ---


@pytest.mark.parametrize(
    "seed, scale, shift",
    [
        (0, 1, (0.0, 0.0)),  # the canonical face
        (1, 1, (0.0, 14.0)),  # chin nodes past the bottom edge: clamped samples
        (2, 2, (-9.0, -6.0)),  # a ×2 field, nodes past the top-left edges
        (3, 1, (3.3, -2.7)),  # sub-pixel positions
    ],
)
def test_numba_matches_reference(seed: int, scale: int, shift) -> None:
    rng = np.random.default_rng(seed)
    positions = node_positions(LANDMARKS + rng.normal(0, 2, (68, 2)).astype(np.float32))
    positions = positions + np.asarray(shift, np.float32)
    side = SIZE * scale
    coarse = rng.standard_normal((6, 6, 2)).astype(np.float32)
    field = 2.0 * cv2.resize(coarse, (side, side), interpolation=cv2.INTER_CUBIC)
    field[rng.integers(0, side, 40), rng.integers(0, side, 40)] += 8.0  # bad flow vectors
    fast = node_residual(field, positions, scale=scale)
    ref = node_residual_ref(field, positions, scale=scale)
    np.testing.assert_allclose(fast[0], ref[0], atol=PARITY_PX)  # sampled
    np.testing.assert_allclose(fast[1], ref[1], atol=PARITY_PX)  # residual
    np.testing.assert_allclose(fast[2][[0, 1, 3, 4]], ref[2][[0, 1, 3, 4]], atol=1e-6)
    np.testing.assert_allclose(fast[2][[2, 5]], ref[2][[2, 5]], atol=PARITY_PX)


def test_lk_flow_equals_dense_flow() -> None:
    ref, cur = textured_face(0), textured_face(1)
    scale = np.float32(1 / 255)
    lk = LKFlow(SIZE)
    for a, b in ((ref, cur), (cur, ref)):  # reused buffers: the second call is clean too
        expected = dense_flow(a.astype(np.float32) * scale, b.astype(np.float32) * scale)
        np.testing.assert_array_equal(lk(a, b), expected)


# ------------------------------------------------------------ (d) timestamps and gaps ---


class ClockFlow:
    """A fake flow whose x is the age between the faces it is given, in ms: every face is
    filled with its timestamp in 5-ms units, so this shows which reference NodeFlow used."""

    scale = 1

    def __call__(self, ref: np.ndarray, cur: np.ndarray) -> np.ndarray:
        field = np.zeros((SIZE, SIZE, 2), np.float32)
        field[..., 0] = 5.0 * (int(cur[0, 0]) - int(ref[0, 0]))
        return field


def clock_face(t_s: float) -> np.ndarray:
    return np.full((SIZE, SIZE), round(t_s * 200), np.uint8)


@pytest.mark.parametrize(
    "fps, ages_ms",
    [
        (25, (40, 80, 160)),  # one, two and four frames back
        (100, (40, 80, 160)),  # four times the frames, the same ages
        (30, (100 / 3, 200 / 3, 500 / 3)),  # the closest frames to each offset
        (10, (None, 100, 200)),  # no frame within 0.6–1.6 × 40 ms
    ],
)
def test_references_chosen_by_timestamp(fps: int, ages_ms) -> None:
    nodes = NodeFlow(NodeConfig(), flow=ClockFlow())
    for i in range(round(0.6 * fps) + 1):
        row = nodes.update(aligned(clock_face(i / fps), i / fps, seq=i))
    for k, age in enumerate(ages_ms):
        assert row.valid[k] == (age is not None)
        if age is not None:
            assert row.age_ms[k] == pytest.approx(age, abs=1e-3)
            np.testing.assert_allclose(row.flow[k, :, 0], round(age / 5) * 5, atol=1e-3)
            assert np.abs(row.residual[k]).max() < 1e-3  # a uniform shift is all rigid


def test_same_motion_at_25_and_100_fps() -> None:
    """A face sliding at 10 px/s with a bump growing at 6 px/s on the lip corners, each frame
    with its own sensor noise: both frame rates pick references of the same age and measure
    the same motion at each offset (the slide: 10 px/s × the age)."""
    face = textured_face(3).astype(np.float32)
    corners = POSITIONS[[NODE_NAMES.index("lip_corner_l"), NODE_NAMES.index("lip_corner_r")]]
    rows = {}
    for fps in (25, 100):
        nodes, rng = NodeFlow(), np.random.default_rng(fps)
        for i in range(round(0.2 * fps) + 1):
            t = i / fps
            motion = affine_field((0, 0, 10.0 * t, 0, 0, 0)) + bumps_field(corners, 6.0 * t, 5.0)
            cur = warp_pair(face, motion) + rng.normal(0, 1.0, face.shape)
            rows[fps] = nodes.update(aligned(np.clip(np.rint(cur), 0, 255).astype(np.uint8), t))
    a, b = rows[25], rows[100]
    assert a.valid.all() and b.valid.all()
    np.testing.assert_allclose(a.age_ms, [40, 80, 160], atol=1e-3)
    np.testing.assert_allclose(b.age_ms, [40, 80, 160], atol=1e-3)
    for row in (a, b):
        np.testing.assert_allclose(row.affine[:, 2], 10.0 * row.age_ms / 1e3, atol=0.1)
    assert np.abs(a.residual - b.residual).max() < 0.15  # measured 0.06


def test_gap_empties_the_history() -> None:
    nodes = NodeFlow(NodeConfig(), flow=ClockFlow())
    for i in range(5):
        row = nodes.update(aligned(clock_face(i * 0.04), i * 0.04, seq=i))
    assert row.valid.tolist() == [True, True, True]
    assert not nodes.update(aligned(None, 0.2, ok=False)).valid.any()  # face lost
    row = nodes.update(aligned(clock_face(0.24), 0.24))
    assert not row.valid.any()  # nothing from before the gap
    assert nodes.update(aligned(clock_face(0.28), 0.28)).valid.tolist() == [True, False, False]
    resets = nodes.resets
    for kwargs in ({"gap": True}, {"redetected": True}, {"t_s": 0.1}):  # clock went back
        t_s = kwargs.pop("t_s", 0.32)
        gap = kwargs.pop("gap", False)
        assert not nodes.update(aligned(clock_face(t_s), t_s, **kwargs), gap=gap).valid.any()
    assert nodes.resets == resets + 3


def test_update_allocates_no_image_buffer() -> None:
    nodes = NodeFlow()
    faces = [textured_face(0), textured_face(1)]
    for i in range(6):
        nodes.update(aligned(faces[i % 2], i / 30))
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        for i in range(6, 12):
            nodes.update(aligned(faces[i % 2], i / 30))
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    assert peak < 16_000  # the row's small arrays; a face is 25.6 kB, a field 205 kB


def test_config_is_checked() -> None:
    with pytest.raises(ValueError):
        NodeConfig(tolerance=(1.2, 1.6))
    with pytest.raises(ValueError):
        NodeConfig(offsets_ms=(0.0, 40.0))
    assert NodeConfig(max_fps=100).history == 28  # 160 ms × 1.6 at 100 fps, + 2
