"""engines.train.paste: an injected expression's own flow, cut out and added to another face."""

from __future__ import annotations

import dataclasses

import numpy as np

from engines.train.augment import plain_partners
from engines.train.data import as_node_input, load_clip
from engines.train.paste import expression_cuts, pasted_clip, pasted_epoch
from tests.helpers import write_clip

PAD = 9  # 0.3 s at the clips' 30 frames/s


def real(path, identity, seed, injected):
    write_clip(path, identity, seed, nodes=True)
    clip = as_node_input(load_clip(path))
    return dataclasses.replace(clip, source={"background": "real", "injected": injected})


def pair_and_background(tmp_path):
    """(plain v, injected v, plain w, expression): the injected clip is its plain video plus a
    known flow on its micro-expression (frames 20-30) and its macro (90-130)."""
    plain = real(tmp_path / "v_plain.npz", "v.mp4", 1, injected=False)
    expression = np.zeros_like(plain.nodes["node_residual"], np.float32)  # (L, O, N, 2)
    expression[20:31, :, 40:46, 1] = 1.2 * np.hanning(11)[:, None, None]  # lips
    expression[90:131, :, 0:13, 1] = -4.0 * np.hanning(41)[:, None, None]  # brows
    residual = plain.nodes["node_residual"].astype(np.float32) + expression
    injected = dataclasses.replace(
        plain,
        source={"background": "real", "injected": True},
        nodes={**plain.nodes, "node_residual": residual},
    )
    background = real(tmp_path / "w_plain.npz", "w.mp4", 2, injected=False)
    return plain, as_node_input(injected), background, expression


def test_cuts_hold_each_expression_and_its_own_flow(tmp_path):
    plain, injected, background, expression = pair_and_background(tmp_path)
    cuts = expression_cuts([plain, injected, background], plain_partners([plain, injected]))
    assert [(c.truth.kind, c.truth.onset, c.truth.apex, c.truth.offset) for c in cuts] == [
        ("micro", PAD, PAD + 4, PAD + 10),
        ("macro", PAD, PAD + 10, PAD + 40),
    ]
    micro = cuts[0]
    assert micro.identity == "v.mp4" and micro.fps == 30.0
    np.testing.assert_allclose(micro.delta, expression[20 - PAD : 31 + PAD], atol=1e-6)


def test_pasted_clip_is_the_background_plus_the_cuts_at_its_truth(tmp_path):
    plain, injected, background, _ = pair_and_background(tmp_path)
    cuts = expression_cuts([plain, injected], plain_partners([plain, injected]))
    clip = pasted_clip(background, cuts, np.random.default_rng(3), spacing_s=(0.5, 0.8))
    assert clip is not None and clip.truth and clip.identity == "w.mp4"
    added = clip.nodes["node_residual"] - background.nodes["node_residual"].astype(np.float32)
    changed = np.flatnonzero(np.abs(added).reshape(clip.length, -1).max(1) > 0)
    spans = [(t.onset - PAD, t.offset + PAD) for t in clip.truth]
    assert all(any(a <= f <= b for a, b in spans) for f in changed)  # nothing elsewhere
    assert all(clip.valid[a : b + 1].all() for a, b in spans)  # only on the face
    assert float(clip.target.apex.max()) == 1.0  # the truth became targets
    assert not bool((clip.x == background.x).all())  # input rows rebuilt from the sum


def test_never_pasted_back_onto_its_own_video_or_another_frame_rate(tmp_path):
    plain, injected, background, _ = pair_and_background(tmp_path)
    cuts = expression_cuts([plain, injected], plain_partners([plain, injected]))
    assert pasted_clip(plain, cuts, np.random.default_rng(0)) is None  # its own video
    slow = dataclasses.replace(background, fps=15.0)
    assert pasted_clip(slow, cuts, np.random.default_rng(0)) is None
    made = pasted_epoch([plain, background], cuts, 2, np.random.default_rng(0))
    assert len(made) == 2 and all(c.identity == "w.mp4" for c in made)
    again = pasted_epoch([plain, background], cuts, 2, np.random.default_rng(0))
    assert [t.onset for c in made for t in c.truth] == [t.onset for c in again for t in c.truth]
