"""Deformation families (mesh, kernel) beside the TPS, and the expression-variety settings."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from stream.errors import MexliveError
from stream.synthetic.animator import FaceAnimator, SyntheticConfig
from stream.synthetic.au import IMAGE_LEFT, MIRROR
from stream.synthetic.deform import WARPERS, KernelWarper, MeshWarper
from stream.synthetic.schedule import DEFORMATIONS

FPS = 30.0
STILL = dict(head_motion=False, noise_sigma=0.0, light_drift=False)
FAMILIES = ("mesh", "kernel")


@pytest.fixture(scope="module", params=FAMILIES)
def still(request) -> FaceAnimator:
    """One family, no head motion, noise or light drift: only expressions and blinks move."""
    return FaceAnimator(SyntheticConfig(seed=0, deformation=request.param, **STILL))


def _events(animator: FaceAnimator, kind: str, n: int = 3):
    return [e for e in animator.events_between(0, int(300 * FPS)) if e.kind == kind][:n]


def _sample(image: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Bilinear samples of a float (H, W) image at points (N, 2)."""
    return cv2.remap(image, points.astype(np.float32)[:, None, :], None, cv2.INTER_LINEAR)[:, 0]


def test_every_configured_family_has_a_warper() -> None:
    assert set(WARPERS) == set(DEFORMATIONS)


# Bilinear sampling of the rendered map between pixels mixes the pieces that meet at a control
# point (mesh: two affine maps with different gradients), so the tolerance grows with the
# movement; measured on the astronaut: mesh 0.05 / 0.25 px, kernel 0.004 / 0.015 px.
@pytest.mark.parametrize(
    ("kind", "limits"),
    [
        ("micro", {"mesh": 0.1, "kernel": 0.02}),  # micro: within the TPS's 0.1 px promise
        ("macro", {"mesh": 0.35, "kernel": 0.05}),  # 6-15 px macros
    ],
)
def test_backward_map_returns_rest_landmarks(still: FaceAnimator, kind: str, limits) -> None:
    # The annotated landmarks move by the annotated amount: the pixel drawn at landmarks_at
    # is the photo's pixel at the rest landmark.
    limit = limits[still.config.deformation]
    for event in _events(still, kind):
        map_x, map_y = still.backward_map(event.apex)
        at = still.landmarks_at(event.apex)  # (68, 2)
        source = np.stack([_sample(map_x, at), _sample(map_y, at)], 1)  # (68, 2)
        assert np.abs(source - still.base_landmarks_px).max() < limit, event
        moved = np.linalg.norm(at - still.landmarks_at(event.onset), axis=1)  # (68,)
        assert abs(moved.max() - event.peak_px) < 1e-3


def test_exact_map_interpolates_the_control_points(still: FaceAnimator) -> None:
    warper = still._warper
    assert isinstance(warper, MeshWarper | KernelWarper)
    event = _events(still, "macro", 1)[0]
    driven, _, _ = still._warp_inputs(event.apex)
    source = warper.source_of(driven, driven)  # (68, 2) float64
    np.testing.assert_allclose(source, warper.rest, atol=1e-6)  # mesh exact; kernel: its ridge
    np.testing.assert_allclose(warper.source_of(driven, warper.anchors_px), warper.anchors_px)


def test_nothing_outside_the_region_moves(still: FaceAnimator) -> None:
    warper = still._warper
    neutral = still.render(0)  # the lead-in: the framed photo itself
    for event in _events(still, "macro", 2):
        frame = still.render(event.apex)
        outside = np.ones(frame.shape[:2], bool)
        outside[warper.y0 : warper.y1, warper.x0 : warper.x1] = False
        assert np.array_equal(frame[outside], neutral[outside])
        assert not np.array_equal(frame, neutral)  # and inside, something did
        map_x, map_y = still.backward_map(event.apex)
        ys, xs = np.nonzero(outside)
        assert np.array_equal(map_x[outside], xs.astype(np.float32))
        assert np.array_equal(map_y[outside], ys.astype(np.float32))


def test_kernel_field_never_folds() -> None:
    # A wider Gaussian overshoots between landmarks and folds the skin (KERNEL_WIDTH's comment).
    animator = FaceAnimator(SyntheticConfig(seed=1, deformation="kernel", **STILL))
    for event in _events(animator, "macro"):
        driven, _, moving = animator._warp_inputs(event.apex)
        field = animator._warper._displacement(driven, moving).astype(np.float64)  # (rh, rw, 2)
        dxy, dxx = np.gradient(field[..., 0])
        dyy, dyx = np.gradient(field[..., 1])
        assert ((1 + dxx) * (1 + dyy) - dxy * dyx).min() > 0.1


@pytest.mark.parametrize("deformation", FAMILIES)
def test_rendering_is_deterministic_and_random_access(deformation: str) -> None:
    config = SyntheticConfig(seed=2, deformation=deformation, micro_per_min=30)
    a, b = FaceAnimator(config), FaceAnimator(config)
    frames = [e.apex for e in a.events_between(0, int(20 * FPS))[:4]]
    first = [a.render(i).copy() for i in frames]
    for i, frame in zip(reversed(frames), reversed(first), strict=True):
        assert np.array_equal(b.render(i), frame)


def test_default_is_the_tps() -> None:
    default = FaceAnimator(SyntheticConfig(seed=3))
    tps = FaceAnimator(SyntheticConfig(seed=3, deformation="tps"))
    mesh = FaceAnimator(SyntheticConfig(seed=3, deformation="mesh"))
    apexes = [e.apex for e in _events(default, "macro", 2)]
    for i in [0, 45, *apexes]:
        assert np.array_equal(default.render(i), tps.render(i))
    # Another family draws the same truth with different pixels.
    np.testing.assert_array_equal(default.landmarks_at(apexes[0]), mesh.landmarks_at(apexes[0]))
    assert not np.array_equal(default.render(apexes[0]), mesh.render(apexes[0]))


def test_unknown_deformation_names_the_choices() -> None:
    with pytest.raises(MexliveError, match="tps, mesh, kernel"):
        SyntheticConfig(deformation="affine")


@pytest.mark.parametrize(
    "bad",
    [
        {"micro_px": (3.0, 1.0)},  # an empty range
        {"micro_px": (0.0, 1.0)},  # a zero amplitude
        {"asymmetry": 1.0},  # one side would not move at all
        {"profile_jitter": -0.1},
    ],
)
def test_bad_variety_settings_are_errors(bad: dict) -> None:
    with pytest.raises(MexliveError):
        SyntheticConfig(**bad)


def _apex_patterns(config: SyntheticConfig) -> tuple[FaceAnimator, list, list[np.ndarray]]:
    animator = FaceAnimator(config)
    events = [e for e in animator.events_between(0, int(120 * FPS)) if e.kind != "blink"]
    patterns = [animator.landmarks_at(e.apex) - animator.landmarks_at(e.onset) for e in events]
    return animator, events, patterns


def test_asymmetry_weakens_one_side() -> None:
    _, base_events, base = _apex_patterns(SyntheticConfig(seed=4, **STILL))
    _, events, skewed = _apex_patterns(SyntheticConfig(seed=4, asymmetry=0.6, **STILL))
    # The same events (timing and AUs come from their own random stream), reshaped.
    assert [(e.onset, e.apex, e.offset, e.aus) for e in events] == [
        (e.onset, e.apex, e.offset, e.aus) for e in base_events
    ]
    ratios = []
    for before, after in zip(base, skewed, strict=True):
        halves = []
        for side in (IMAGE_LEFT, MIRROR[IMAGE_LEFT]):
            norm_before = np.linalg.norm(before[side], axis=1)
            moving = norm_before > 0.05
            gain = np.linalg.norm(after[side], axis=1)[moving] / norm_before[moving]
            halves.append(np.median(gain))
        ratios.append(min(halves) / max(halves))  # the weaker side relative to the other
    ratios = np.array(ratios)
    assert np.all(ratios >= 0.4 - 0.02) and np.all(ratios <= 1.0 + 1e-6)
    assert ratios.min() < 0.7  # some events are clearly one-sided


def test_micro_px_sets_the_micro_range() -> None:
    animator = FaceAnimator(SyntheticConfig(seed=5, micro_px=(0.3, 0.6), micro_per_min=30))
    micros = [e for e in animator.events_between(0, int(60 * FPS)) if e.kind == "micro"]
    assert micros and all(0.3 - 1e-3 <= e.peak_px <= 0.6 + 1e-3 for e in micros)


def test_profile_jitter_keeps_the_truth_exact() -> None:
    plain, events, _ = _apex_patterns(SyntheticConfig(seed=6, **STILL))
    jitter, events_j, _ = _apex_patterns(SyntheticConfig(seed=6, profile_jitter=1.0, **STILL))
    assert events_j == events  # same onsets, apexes, offsets and peaks
    changed = 0
    for event in events_j:
        frames = range(event.onset, event.offset + 1)
        w_plain = [plain._expression(i)[0] for i in frames]
        w_jitter = [jitter._expression(i)[0] for i in frames]
        np.testing.assert_allclose(w_jitter[0], 0.0, atol=1e-12)  # onset: rest
        np.testing.assert_allclose(w_jitter[-1], 0.0, atol=1e-12)  # offset: rest
        np.testing.assert_array_equal(
            w_jitter[event.apex - event.onset], w_plain[event.apex - event.onset]
        )
        changed += any(not np.allclose(a, b) for a, b in zip(w_plain, w_jitter, strict=True))
    assert changed >= len(events_j) // 2
