"""The node spotter's input rows: the layout the encoder reads, z-scores against the calm-frame
noise, and a noise estimate that blinks, speech and head motion do not move."""

from __future__ import annotations

import numpy as np
import pytest

from engines.context import FrameContext
from engines.node_inputs import (
    EXTRA,
    GROUP_NAMES,
    GROUP_SIZES,
    N_NODES,
    N_OFFSETS,
    NODE_WIDTH,
    NOISE_PRIOR_PX,
    NodeInput,
    input_width,
    node_input_names,
)
from stream.face.nodes import NODE_GROUPS, NodeConfig

CALM = FrameContext(0.3, False, 0.05, False, 10.0, False)
BLINK = FrameContext(0.1, True, 0.05, False, 10.0, False)
TALK = FrameContext(0.3, False, 0.2, True, 10.0, False)
NOD = FrameContext(0.3, False, 0.05, False, 200.0, True)
ALL_VALID = np.ones(N_OFFSETS, bool)


def test_layout_matches_the_front_end():
    # engines never imports stream: the sizes written there must be the front end's order
    runs = []
    for group in NODE_GROUPS:
        if runs and runs[-1][0] == group:
            runs[-1][1] += 1
        else:
            runs.append([group, 1])
    assert tuple(g for g, _ in runs) == GROUP_NAMES
    assert tuple(n for _, n in runs) == GROUP_SIZES and sum(GROUP_SIZES) == N_NODES
    assert len(NodeConfig().offsets_ms) == N_OFFSETS == len(NOISE_PRIOR_PX)
    assert len(node_input_names()) == input_width() == N_NODES * NODE_WIDTH + len(EXTRA)


def test_first_row_is_the_residual_over_the_prior():
    rng = np.random.default_rng(0)
    residual = rng.normal(0, 0.5, (N_OFFSETS, N_NODES, 2)).astype(np.float32)
    row = NodeInput().update(residual, ALL_VALID, CALM, 0.0, True)
    nodes = row[: N_NODES * NODE_WIDTH].reshape(N_NODES, NODE_WIDTH)
    prior = np.asarray(NOISE_PRIOR_PX)[:, None, None]  # (O, 1, 1)
    want_z = np.clip(residual / prior, -12, 12).transpose(1, 0, 2).reshape(N_NODES, -1)
    np.testing.assert_allclose(nodes[:, : 2 * N_OFFSETS], want_z, rtol=1e-5)
    np.testing.assert_allclose(
        nodes[:, 2 * N_OFFSETS :], residual.transpose(1, 0, 2).reshape(N_NODES, -1), rtol=1e-6
    )
    extra = dict(zip(EXTRA, row[N_NODES * NODE_WIDTH :], strict=True))
    assert extra["valid_80ms"] == 1 and extra["blink"] == 0 and extra["frame_rate"] == 1.0


@pytest.mark.parametrize("busy", [BLINK, TALK, NOD, None])
def test_noise_is_learned_on_calm_frames_only(busy):
    inputs = NodeInput()
    loud = np.full((N_OFFSETS, N_NODES, 2), 3.0, np.float32)  # a blink's or a word's motion
    for i in range(300):
        inputs.update(loud, ALL_VALID, busy, i / 30, True)
    np.testing.assert_allclose(inputs.noise_px[:, 0], NOISE_PRIOR_PX, rtol=1e-9)
    quiet = np.full((N_OFFSETS, N_NODES, 2), 0.5, np.float32)
    for i in range(300, 1200):  # 30 s of calm: the estimate goes to this face's own noise
        inputs.update(quiet, ALL_VALID, CALM, i / 30, True)
    np.testing.assert_allclose(inputs.noise_px, 0.5, rtol=0.05)  # the prior keeps ~5 %


def test_invalid_row_is_zero_and_starts_over():
    inputs = NodeInput()
    quiet = np.full((N_OFFSETS, N_NODES, 2), 0.5, np.float32)
    for i in range(200):
        inputs.update(quiet, ALL_VALID, CALM, i / 30, True)
    assert not np.allclose(inputs.noise_px[:, 0], NOISE_PRIOR_PX)
    row = inputs.update(quiet, ALL_VALID, CALM, 200 / 30, False)
    assert not row.any()
    np.testing.assert_allclose(inputs.noise_px[:, 0], NOISE_PRIOR_PX)


def test_invalid_offsets_read_zero():
    residual = np.ones((N_OFFSETS, N_NODES, 2), np.float32)
    row = NodeInput().update(residual, np.array([True, False, True]), CALM, 0.0, True)
    nodes = row[: N_NODES * NODE_WIDTH].reshape(N_NODES, NODE_WIDTH)
    assert not nodes[:, 2:4].any() and not nodes[:, 8:10].any() and nodes[:, 0:2].all()


def test_the_noise_forgets_what_left_the_window_exactly():
    """A stream started 20 s later (a chunk of a long video) reads the very same rows once
    its calm frames cover the window: the estimate sums whole blocks of media time."""
    rng = np.random.default_rng(3)
    fps, window_s = 30.0, NodeInput().config.window_s
    residuals = rng.normal(0, 0.4, (round((window_s + 30) * fps), N_OFFSETS, N_NODES, 2))
    contexts = [CALM if i % 90 < 75 else BLINK for i in range(len(residuals))]
    early, late = NodeInput(), NodeInput()
    later = round(20 * fps)
    same = []
    for i, (residual, context) in enumerate(zip(residuals, contexts, strict=True)):
        t_s = 100.5 + i / fps  # media time: neither stream starts at a block border
        row = early.update(residual, ALL_VALID, context, t_s, True).copy()
        if i >= later:
            same.append(np.array_equal(row, late.update(residual, ALL_VALID, context, t_s, True)))
    settled = round((window_s + 1.0) * fps)  # the window, and the block the late one began in
    assert not all(same[: settled - 2 * round(fps)])  # the late stream did differ at first
    assert all(same[settled:]), f"{same[settled:].count(False)} rows differ after the window"
