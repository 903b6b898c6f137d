"""engines.train.augment: mirrored faces and scaled backgrounds, the expression kept."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from engines.node_inputs import MIRROR_NODES, N_NODES
from engines.train.augment import (
    Augment,
    augment_epoch,
    mirror_residual,
    plain_partners,
    with_background_gain,
)
from engines.train.data import as_node_input, load_clip
from engines.train.spotter import main as train_main
from tests.helpers import train_args, write_clip, write_node_clips


def real_pair(tmp_path):
    """(plain, injected) node clips of one real video: the same background, and the
    injected one carries an extra 1.5-px brow bump at frames 40-50 (its own expression)."""
    write_clip(tmp_path / "plain.npz", "v.mp4", 1, nodes=True)
    plain = as_node_input(load_clip(tmp_path / "plain.npz"))
    plain = dataclasses.replace(plain, source={"background": "real", "injected": False})
    expression = np.zeros_like(plain.nodes["node_residual"], np.float32)  # (L, O, N, 2)
    expression[40:51, :, :13, 1] = -1.5 * np.hanning(11)[:, None, None]
    residual = plain.nodes["node_residual"].astype(np.float32) + expression
    injected = dataclasses.replace(
        plain,
        source={"background": "real", "injected": True},
        nodes={**plain.nodes, "node_residual": residual},
    )
    return plain, as_node_input(injected), expression


def test_mirror_nodes_are_the_front_ends_pairs():
    from stream.face.nodes import NODE_NAMES

    assert len(MIRROR_NODES) == N_NODES and sorted(MIRROR_NODES) == list(range(N_NODES))
    for i, j in enumerate(MIRROR_NODES):
        name, image = NODE_NAMES[i], NODE_NAMES[j]
        if name.endswith(("_l", "_r")):
            assert image == name[:-2] + ("_r" if name.endswith("_l") else "_l")
        else:
            assert i == j  # a midline node is its own image


def test_mirror_swaps_sides_and_negates_dx_and_twice_is_identity():
    rng = np.random.default_rng(0)
    residual = rng.normal(size=(5, 3, N_NODES, 2)).astype(np.float32)  # (L, O, N, 2)
    mirrored = mirror_residual(residual)
    np.testing.assert_array_equal(mirrored[:, :, 1, 0], -residual[:, :, 0, 0])  # brow_outer r←l
    np.testing.assert_array_equal(mirrored[:, :, 1, 1], residual[:, :, 0, 1])
    np.testing.assert_array_equal(mirrored[:, :, 10, 1], residual[:, :, 10, 1])  # glabella
    np.testing.assert_array_equal(mirror_residual(mirrored), residual)


def test_background_gain_scales_the_plain_part_and_keeps_the_expression(tmp_path):
    plain, injected, expression = real_pair(tmp_path)
    assert plain_partners([plain, injected]) == {id(injected): plain}
    background = plain.nodes["node_residual"].astype(np.float32)
    for gain in (0.5, 1.0, 1.4):
        got = with_background_gain(injected, plain, gain)
        want = (gain * background + expression) * plain.nodes["node_valid"][..., None, None]
        np.testing.assert_allclose(got, want, atol=1e-6)  # float32 sums of a few px
        np.testing.assert_allclose(with_background_gain(plain, None, gain), gain * background)


def test_partners_need_the_same_video_and_length(tmp_path):
    plain, injected, _ = real_pair(tmp_path)
    other = dataclasses.replace(plain, identity="w.mp4")
    assert plain_partners([other, injected]) == {}
    shorter = dataclasses.replace(plain, x=plain.x[:-1])
    assert plain_partners([shorter, injected]) == {}


def test_an_epoch_is_fresh_but_repeatable_and_off_changes_nothing(tmp_path):
    plain, injected, _ = real_pair(tmp_path)
    clips, partners = [plain, injected], plain_partners([plain, injected])
    on = Augment(mirror=True, background_gain=(0.7, 1.3))
    first = augment_epoch(clips, partners, on, np.random.default_rng((0, 1)))
    again = augment_epoch(clips, partners, on, np.random.default_rng((0, 1)))
    other = augment_epoch(clips, partners, on, np.random.default_rng((0, 2)))
    for a, b in zip(first, again, strict=True):
        assert bool((a.x == b.x).all())
    assert any(not bool((a.x == b.x).all()) for a, b in zip(first, other, strict=True))
    assert all(a.target is c.target for a, c in zip(first, clips, strict=True))  # truth kept
    off = augment_epoch(clips, partners, Augment(), np.random.default_rng(0))
    assert all(a is c for a, c in zip(off, clips, strict=True))


def as_real_video(path, injected: bool) -> None:
    """Mark a feature file as made from a real video (plain or injected), as the recipe does."""
    with np.load(path) as data:
        arrays = dict(data)
    arrays["synthetic"] = np.array(json.dumps({"background": "real", "injected": injected}))
    np.savez_compressed(path, **arrays)


def test_training_with_augmentation_is_deterministic(tmp_path):
    folder = write_node_clips(tmp_path / "nodes")  # a.jpg twice, b.jpg; c.jpg validates
    as_real_video(folder / "clip_0000.npz", injected=False)  # a's plain video ...
    as_real_video(folder / "clip_0001.npz", injected=True)  # ... injected: a partner pair
    as_real_video(folder / "clip_0002.npz", injected=False)  # b: a background to paste on
    rows = []
    for run in ("one", "two"):
        out = tmp_path / run / "spotter.pt"
        args = train_args(folder, out, epochs=1, input_kind="nodes")
        flags = ["--mirror", "--background-gain", "0.7,1.3", "--paste", "2", "--top-weight", "1"]
        assert train_main([*args, *flags]) == 0
        manifest = json.loads((out.parent / "manifest.json").read_text())
        train = manifest["train"]
        rows.append((manifest["sha256"], train["mirror"], train["paste"], train["top_weight"]))
    assert rows[0] == rows[1] and rows[0][1:] == (True, 2, 1.0)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--background-gain", "1.3"], "expected LOW,HIGH"),
        (["--background-gain", "1.3,0.7"], "0 < LOW <= HIGH"),
        (["--mirror", "--input", "motion"], "need --input nodes"),
        (["--paste", "-1"], "must be >= 0"),
        (["--top-weight", "-0.5"], "must be >= 0"),
    ],
)
def test_bad_augmentation_flags_exit_2(tmp_path, capsys, extra, message):
    folder = write_node_clips(tmp_path / "nodes")
    args = train_args(folder, tmp_path / "w.pt", epochs=1, input_kind="nodes")
    assert train_main([*args, *extra]) == 2
    assert message in capsys.readouterr().err
