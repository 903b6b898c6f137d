"""Spotter: streaming parity, targets, masked loss, a tiny overfit, size."""

from __future__ import annotations

import math

import pytest
import torch

from engines.models.spotter import (
    IGNORE,
    Interval,
    Spotter,
    SpotterConfig,
    SpotterOutput,
    loss,
    loss_terms,
    targets,
    top_negative_term,
)

ATOL = 1e-5  # float32 rounding of forward (chunked scan) vs step (per-frame recurrence)


@pytest.fixture(autouse=True)
def _one_thread():
    # Tiny tensors on a shared 2-core box: a second intra-op thread only adds contention.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _model(n_features: int = 12, seed: int = 0, **kwargs) -> Spotter:
    torch.manual_seed(seed)
    return Spotter(SpotterConfig(n_features=n_features, **kwargs))


def _step_all(model: Spotter, x: torch.Tensor, valid: torch.Tensor | None = None):
    state = model.init_state(x.shape[0])
    outs = []
    for t in range(x.shape[1]):
        out_t, state = model.step(x[:, t], state, None if valid is None else valid[:, t])
        outs.append(out_t)
    stacked = SpotterOutput(*(torch.stack(parts, dim=1) for parts in zip(*outs, strict=True)))
    return stacked, state


def test_step_equals_forward():
    model = _model()
    model.set_normalization(torch.randn(12), torch.rand(12) + 0.5)
    x = torch.randn(2, 200, 12) * 2.0 + 0.3
    with torch.no_grad():
        out, state = model(x)
        out_steps, state_steps = _step_all(model, x)
    assert out.apex.shape == (2, 200)
    assert out.kind_logits.shape == (2, 200, 2) and out.emotion_logits.shape == (2, 200, 3)
    for fast, slow in zip(out, out_steps, strict=True):
        torch.testing.assert_close(slow, fast, atol=ATOL, rtol=1e-5)
    torch.testing.assert_close(state_steps.ssm, state.ssm, atol=ATOL, rtol=1e-5)
    torch.testing.assert_close(state_steps.conv, state.conv, atol=ATOL, rtol=1e-5)
    assert ((out.apex >= 0) & (out.apex <= 1)).all()


def test_node_spotter_step_equals_forward():
    # the spatial encoder is per frame: streaming stays exactly the SSM's
    sizes, width, extra = (3, 2, 4), 5, 3
    n = sum(sizes) * width + extra
    model = _model(n, seed=1, group_sizes=sizes, node_width=width, d_node=8, d_model=16)
    model.set_normalization(torch.randn(n), torch.rand(n) + 0.5)
    x = torch.randn(2, 150, n)
    valid = torch.rand(2, 150) > 0.1
    with torch.no_grad():
        out, state = model(x, valid=valid)
        out_steps, state_steps = _step_all(model, x, valid)
    for fast, slow in zip(out, out_steps, strict=True):
        torch.testing.assert_close(slow, fast, atol=ATOL, rtol=1e-5)
    torch.testing.assert_close(state_steps.ssm, state.ssm, atol=ATOL, rtol=1e-5)


def test_node_encoder_pools_within_each_group():
    # a node's motion reaches the model only through its own group's mean and max
    from engines.models.encoder import NodeEncoder

    torch.manual_seed(0)
    encoder = NodeEncoder((2, 3), node_width=4, n_extra=1, d_node=6, d_model=8)
    x = torch.zeros(1, 5 * 4 + 1)
    base = encoder(x)
    moved = x.clone()
    moved[0, 2 * 4 : 3 * 4] = 5.0  # node 2: the first of group 1
    swapped = x.clone()
    swapped[0, 4 * 4 : 5 * 4] = 5.0  # node 4: the same group, another node
    assert not torch.allclose(encoder(moved), base)
    h_moved = encoder.node_mlp(moved[0, :20].view(5, 4)) + encoder.node_embed  # (5, 6)
    pooled_group0 = torch.cat([h_moved[:2].mean(0), h_moved[:2].amax(0)])
    h_base = encoder.node_mlp(x[0, :20].view(5, 4)) + encoder.node_embed
    torch.testing.assert_close(pooled_group0, torch.cat([h_base[:2].mean(0), h_base[:2].amax(0)]))
    assert encoder(swapped).shape == (1, 8)


def test_step_equals_forward_with_invalid_rows_and_carried_state():
    model = _model()
    x = torch.randn(2, 90, 12)
    valid = torch.rand(2, 90) > 0.2
    x[~valid] = float("nan")  # invalid rows may hold anything; they become zero input
    with torch.no_grad():
        first, mid = model(x[:, :50], valid=valid[:, :50])
        second, _ = model(x[:, 50:], mid, valid[:, 50:])
        out_steps, _ = _step_all(model, x, valid)
    apex = torch.cat([first.apex, second.apex], dim=1)
    assert torch.isfinite(apex).all()
    torch.testing.assert_close(out_steps.apex, apex, atol=ATOL, rtol=1e-5)


def test_reset_state_zeroes_only_the_streams_with_a_gap():
    model = _model()
    with torch.no_grad():
        _, state = model(torch.randn(3, 20, 12))
    reset = model.reset_state(state, torch.tensor([False, True, False]))
    assert not reset.ssm[:, 1].any() and not reset.conv[:, 1].any()
    torch.testing.assert_close(reset.ssm[:, [0, 2]], state.ssm[:, [0, 2]])
    assert reset.ssm.shape == (2, 3, 128, 16)  # (n_layers, B, d_inner, d_state)


def test_gaussian_target_peaks_at_each_apex_and_vanishes_far_away():
    intervals = [Interval(10, 14, 20, kind=0, emotion=2), (100, 130, 180)]
    target = targets(intervals, length=300)
    assert target.apex.shape == (300,)
    assert target.apex[14] == 1.0 and target.apex[130] == 1.0
    assert target.apex.max() == 1.0
    # σ = 0.25 · length: 2.75 frames for the first, 20.25 for the second.
    assert target.apex[17].item() == pytest.approx(math.exp(-0.5 * (3 / 2.75) ** 2), rel=1e-6)
    assert target.apex[60] == 0.0 and target.apex[250:].eq(0).all()  # beyond 3σ: exactly 0
    assert target.apex[13] < 1.0 and target.apex[15] < 1.0  # a peak, not a plateau
    assert target.kind[10:21].eq(0).all() and target.emotion[10:21].eq(2).all()
    assert target.kind[100:181].eq(0).all() and target.emotion[100:181].eq(IGNORE).all()
    assert target.kind[21:100].eq(IGNORE).all()
    with pytest.raises(ValueError):
        targets([(10, 5, 20)], length=30)  # apex before onset


def _batch(model: Spotter, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 60, model.config.n_features, generator=g)
    t = [targets([Interval(10, 15, 22, 0, 1)], 60), targets([Interval(30, 40, 55, 1, 0)], 60)]
    apex, kind, emotion = (torch.stack(parts) for parts in zip(*t, strict=True))
    mask = torch.ones(2, 60, dtype=torch.bool)
    mask[0, 45:] = False  # padding at the end of the shorter clip
    mask[1, 5:8] = False  # a face-lost gap
    return x, apex, kind, emotion, mask


def test_loss_ignores_masked_rows():
    model = _model()
    x, apex, kind, emotion, mask = _batch(model)
    with torch.no_grad():
        base = loss(model(x, valid=mask)[0], apex, kind, emotion, mask)
        x2, apex2, kind2, emotion2 = x.clone(), apex.clone(), kind.clone(), emotion.clone()
        x2[~mask] = 1e3 * torch.randn(int((~mask).sum()), x.shape[-1])
        apex2[~mask] = float("nan")
        kind2[~mask] = 1
        emotion2[~mask] = 2
        changed = loss(model(x2, valid=mask)[0], apex2, kind2, emotion2, mask)
        # The same change on a valid row does move the loss.
        apex3 = apex.clone()
        apex3[0, 0] = 1.0
        moved = loss(model(x, valid=mask)[0], apex3, kind, emotion, mask)
    assert torch.isfinite(base)
    assert changed == base
    assert moved != base


def test_loss_weights_and_empty_labels():
    model = _model()
    x, apex, kind, emotion, mask = _batch(model)
    with torch.no_grad():
        out, _ = model(x, valid=mask)
        terms = loss_terms(out, apex, kind, emotion, mask)
        no_labels = torch.full_like(kind, IGNORE)
        empty = loss_terms(out, apex, no_labels, no_labels, mask)
    expected = 0.9 * terms.apex + 0.1 * terms.emotion + 0.05 * terms.kind
    torch.testing.assert_close(terms.total, expected)
    assert empty.kind == 0 and empty.emotion == 0  # no labelled frames: 0, not NaN
    torch.testing.assert_close(empty.total, 0.9 * terms.apex)


def test_top_negative_term_takes_the_highest_scores_far_from_expressions():
    length = 100
    apex = torch.full((1, length), 0.1)
    apex[0, 10] = 0.9  # far from the expression: the highest false alarm
    apex[0, 70] = 0.5  # far: the second
    apex[0, 45] = 0.99  # inside the guard around the expression at 50: not a false alarm
    apex[0, 90] = 0.95  # invalid row: nothing
    target = torch.zeros(1, length)
    target[0, 48:53] = 1.0
    mask = torch.ones(1, length, dtype=torch.bool)
    mask[0, 90] = False
    apex.requires_grad_(True)
    # share 0.02 of 100 frames: the top 2 far frames, 0.9 and 0.5
    term = top_negative_term(apex, target, mask, share=0.02, guard=10)
    torch.testing.assert_close(term, torch.tensor((0.9**2 + 0.5**2) / 2))
    term.backward()
    assert torch.nonzero(apex.grad[0])[:, 0].tolist() == [10, 70]  # only they are pushed down
    # a guard that covers the whole sequence leaves nothing: 0, not NaN
    assert top_negative_term(apex, target, mask, share=0.02, guard=60) == 0


def test_top_weight_adds_the_term_to_the_total():
    model = _model()
    x, apex, kind, emotion, mask = _batch(model)
    with torch.no_grad():
        out, _ = model(x, valid=mask)
        plain = loss_terms(out, apex, kind, emotion, mask)
        weighted = loss_terms(out, apex, kind, emotion, mask, top_weight=2.0, top_guard=3)
    assert plain.top == 0 and weighted.top > 0
    torch.testing.assert_close(weighted.total, plain.total + 2.0 * weighted.top)


def test_tiny_overfit_on_synthetic_bumps():
    # Channel 0 carries a bump that rises 3 frames before each apex and peaks on it; the other
    # channels are noise. The causal model must learn to score frames near the peaks.
    torch.manual_seed(0)
    length, n_features = 160, 6
    apexes = [[25, 90, 140], [50, 110]]
    x = 0.3 * torch.randn(2, length, n_features)
    t = torch.arange(length, dtype=torch.float32)
    rows = []
    for b, clip_apexes in enumerate(apexes):
        for a in clip_apexes:
            x[b, :, 0] += 3.0 * torch.exp(-0.5 * ((t - a) / 3.0) ** 2)
        rows.append(targets([(a - 6, a, a + 6) for a in clip_apexes], length))
    target_apex, kind, emotion = (torch.stack(p) for p in zip(*rows, strict=True))
    mask = torch.ones(2, length, dtype=torch.bool)

    model = _model(n_features=n_features, d_model=32, d_state=8)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)

    def apex_mse() -> float:
        with torch.no_grad():
            return loss_terms(model(x)[0], target_apex, kind, emotion, mask).apex.item()

    before = apex_mse()
    for _ in range(150):
        opt.zero_grad()
        loss(model(x)[0], target_apex, kind, emotion, mask).backward()
        opt.step()
    after = apex_mse()
    assert after < before / 10, (before, after)


def test_parameter_count_in_budget():
    for n_features in (12, 48):
        model = _model(n_features=n_features)
        n_params = sum(p.numel() for p in model.parameters())
        assert 50_000 <= n_params <= 150_000, n_params
    buffers = dict(model.named_buffers())
    assert set(buffers) == {"feature_mean", "feature_std"}  # saved in the state_dict


def test_normalization_travels_with_the_weights():
    model = _model()
    model.set_normalization(torch.arange(12.0), torch.zeros(12))  # std floored, no inf
    assert torch.isfinite(model.feature_std).all() and (model.feature_std > 0).all()
    clone = _model(seed=5)
    clone.load_state_dict(model.state_dict())
    torch.testing.assert_close(clone.feature_mean, torch.arange(12.0))
