"""benchmarks.val_seeds: more validation seeds, never the training ones; recipe files linked."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.val_seeds import link_recipe_files, main, parse_seeds


def test_seed_ranges_and_lists():
    assert parse_seeds("300-303") == [300, 301, 302, 303]
    assert parse_seeds("301,305") == [301, 305]


@pytest.mark.parametrize("text", ["100-111", "200", "3x", "305-300"])
def test_training_and_recipe_seeds_or_nonsense_are_refused(text):
    with pytest.raises(ValueError, match="--seeds"):
        parse_seeds(text)


def test_only_the_named_identities_are_linked(tmp_path):
    recipe = tmp_path / "recipe" / "validation" / "real_plain"
    recipe.mkdir(parents=True)
    for name, identity in [("a_plain", "a.mp4"), ("b_plain", "b.mp4"), ("a_s200", "a.mp4")]:
        np.savez(recipe / f"{name}.npz", identity=np.array(identity))
    out = tmp_path / "out"
    assert link_recipe_files(tmp_path / "recipe", out, ["a.mp4"]) == 2
    linked = sorted(p.name for p in out.iterdir())
    assert linked == ["real_plain__a_plain.npz", "real_plain__a_s200.npz"]
    assert all(p.is_symlink() and p.resolve().parent == recipe for p in out.iterdir())


def test_bad_input_exits_2(tmp_path, capsys):
    assert main([str(tmp_path / "o"), "--recipe", str(tmp_path), "--seeds", "100"]) == 2
    assert "--seeds" in capsys.readouterr().err
    assert main([str(tmp_path / "o"), "--recipe", str(tmp_path)]) == 2
    assert "not a recipe folder" in capsys.readouterr().err
