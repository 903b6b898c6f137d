"""Selective SSM: chunked scan vs the textbook loop, step vs forward, state carry and reset."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from engines.models.ssm import (
    SelectiveSSM,
    SSMConfig,
    SSMState,
    selective_scan,
    selective_scan_ref,
)

# float32 throughout. The chunked scan runs its chunks in float64 and the reference in float32,
# so the gap is the reference's own rounding, accumulated over L steps.
ATOL = 1e-5
RTOL = 1e-5


@pytest.fixture(autouse=True)
def _one_thread():
    # Tiny tensors on a shared 2-core box: a second intra-op thread only adds contention.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _scan_inputs(batch: int, length: int, d: int, n: int, dt_scale: float = 1.0, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, length, d, generator=g)
    delta = F.softplus(torch.randn(batch, length, d, generator=g) - 2.0) * dt_scale  # Δ > 0
    A = -(torch.rand(d, n, generator=g) * 4.0 + 0.1)  # negative diagonal
    B = torch.randn(batch, length, n, generator=g)
    C = torch.randn(batch, length, n, generator=g)
    D = torch.randn(d, generator=g)
    h0 = torch.randn(batch, d, n, generator=g)
    return x, delta, A, B, C, D, h0


@pytest.mark.parametrize(
    ("batch", "length", "d", "n", "chunk"),
    [
        (1, 64, 16, 4, 32),  # L a multiple of the chunk
        (3, 77, 32, 8, 32),  # L not a multiple, batch > 1
        (2, 5, 8, 16, 32),  # L shorter than one chunk
        (2, 1, 8, 4, 32),  # a single frame
        (4, 100, 24, 16, 7),  # odd chunk size
        (2, 33, 8, 4, 1),  # chunk of one frame: the plain recurrence
    ],
)
@pytest.mark.parametrize("with_h0", [False, True])
def test_chunked_scan_matches_reference(batch, length, d, n, chunk, with_h0):
    torch.manual_seed(0)
    x, delta, A, B, C, D, h0 = _scan_inputs(batch, length, d, n)
    h0 = h0 if with_h0 else None
    y, h = selective_scan(x, delta, A, B, C, D, h0, chunk_size=chunk)
    y_ref, h_ref = selective_scan_ref(x, delta, A, B, C, D, h0)
    assert y.dtype == h.dtype == torch.float32
    torch.testing.assert_close(y, y_ref, atol=ATOL, rtol=RTOL)
    torch.testing.assert_close(h, h_ref, atol=ATOL, rtol=RTOL)


def test_chunked_scan_survives_fast_decays():
    # Δ·A down to about -200 per frame: exp(-S) would overflow float32 within a chunk; the
    # float64 chunk and the -20 clamp keep it finite and equal to the unclamped reference.
    x, delta, A, B, C, D, h0 = _scan_inputs(2, 96, 16, 8, dt_scale=50.0, seed=1)
    assert (delta[..., None] * A).min() < -100
    y, h = selective_scan(x, delta, A, B, C, D, h0)
    y_ref, h_ref = selective_scan_ref(x, delta, A, B, C, D, h0)
    assert torch.isfinite(y).all()
    torch.testing.assert_close(y, y_ref, atol=1e-4, rtol=1e-5)  # |y| reaches ~1e3 here
    torch.testing.assert_close(h, h_ref, atol=ATOL, rtol=RTOL)


def test_chunk_size_is_bounded():
    with pytest.raises(ValueError, match="chunk_size"):
        SSMConfig(chunk_size=64)  # 64 · 20 > 709: float64 exp would overflow
    x, delta, A, B, C, *_ = _scan_inputs(1, 4, 4, 2)
    with pytest.raises(ValueError, match="chunk_size"):
        selective_scan(x, delta, A, B, C, chunk_size=0)


def _block(seed: int = 0, **kwargs) -> SelectiveSSM:
    torch.manual_seed(seed)
    block = SelectiveSSM(SSMConfig(**kwargs))
    # Larger Δ than the init so that the state actually carries over many frames.
    with torch.no_grad():
        block.dt_proj.bias.add_(2.0)
    return block


def _step_all(block: SelectiveSSM, x: torch.Tensor, state: SSMState):
    ys = []
    for t in range(x.shape[1]):
        y_t, state = block.step(x[:, t], state)  # (B, D)
        ys.append(y_t)
    return torch.stack(ys, dim=1), state


@pytest.mark.parametrize(
    ("batch", "length", "kwargs"),
    [
        (2, 150, {}),  # defaults, L not a multiple of the chunk
        (1, 3, {}),  # shorter than the conv window
        (3, 70, {"d_model": 32, "d_state": 8, "d_conv": 2, "chunk_size": 16}),  # other sizes
    ],
)
def test_step_equals_forward(batch, length, kwargs):
    block = _block(**kwargs)
    x = torch.randn(batch, length, block.config.d_model)
    with torch.no_grad():
        y, state = block(x)
        y_steps, state_steps = _step_all(block, x, block.init_state(batch))
    torch.testing.assert_close(y_steps, y, atol=ATOL, rtol=RTOL)
    torch.testing.assert_close(state_steps.conv, state.conv, atol=ATOL, rtol=RTOL)
    torch.testing.assert_close(state_steps.ssm, state.ssm, atol=ATOL, rtol=RTOL)


def test_forward_in_two_chunks_with_carried_state_equals_one_forward():
    block = _block()
    x = torch.randn(2, 130, 64)
    with torch.no_grad():
        y, state = block(x)
        y1, mid = block(x[:, :45])  # 45: not a chunk boundary
        y2, end = block(x[:, 45:], mid)
        # Streaming on from an offline chunk is the same stream too.
        y2_steps, _ = _step_all(block, x[:, 45:], mid)
    torch.testing.assert_close(torch.cat([y1, y2], dim=1), y, atol=ATOL, rtol=RTOL)
    torch.testing.assert_close(end.ssm, state.ssm, atol=ATOL, rtol=RTOL)
    torch.testing.assert_close(end.conv, state.conv, atol=ATOL, rtol=RTOL)
    torch.testing.assert_close(y2_steps, y2, atol=ATOL, rtol=RTOL)


def test_reset_after_steps_equals_fresh_start():
    block = _block()
    history, clip = torch.randn(2, 40, 64), torch.randn(2, 30, 64)
    with torch.no_grad():
        _, used = _step_all(block, history, block.init_state(2))
        assert used.ssm.abs().max() > 0
        after_reset, _ = _step_all(block, clip, block.init_state(2))  # a gap: zeros again
        fresh, _ = block(clip)
    torch.testing.assert_close(after_reset, fresh, atol=ATOL, rtol=RTOL)


def test_init_state_layout():
    block = _block(d_model=32, d_state=8, d_conv=3)
    state = block.init_state(5)
    assert state.conv.shape == (5, 64, 2)  # (B, d_inner, d_conv - 1)
    assert state.ssm.shape == (5, 64, 8)  # (B, d_inner, d_state)
    assert not state.conv.any() and not state.ssm.any()


def test_gradients_flow_without_nan():
    block = _block()
    x = torch.randn(2, 80, 64, requires_grad=True)
    y, state = block(x)
    (y.pow(2).mean() + state.ssm.pow(2).mean()).backward()
    grads = {name: p.grad for name, p in block.named_parameters()}
    assert all(g is not None for g in grads.values()), [n for n, g in grads.items() if g is None]
    assert all(torch.isfinite(g).all() for g in grads.values())
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    for name in ("A_log", "dt_proj.weight", "x_proj.weight", "conv1d.weight"):
        assert grads[name].abs().sum() > 0, name


def test_scan_gradients_match_reference():
    x, delta, A, B, C, D, h0 = _scan_inputs(2, 50, 8, 4)
    leaves = [t.clone().requires_grad_() for t in (x, delta, A, B, C)]
    ref_leaves = [t.clone().requires_grad_() for t in (x, delta, A, B, C)]
    w = torch.randn(2, 50, 8)
    (selective_scan(*leaves, D, h0)[0] * w).sum().backward()
    (selective_scan_ref(*ref_leaves, D, h0)[0] * w).sum().backward()
    for fast, ref in zip(leaves, ref_leaves, strict=True):
        torch.testing.assert_close(fast.grad, ref.grad, atol=1e-4, rtol=1e-4)
