"""benchmarks.bench_val_froc: weights compared on validation clips, never on clips they were
trained on (tiny node-feature clips, as in tests/engines/train)."""

from __future__ import annotations

from benchmarks.bench_val_froc import main as val_froc_main
from engines.train.spotter import main as train_main
from tests.helpers import write_node_clips


def _train(folder, out) -> int:
    """One epoch of the node spotter with c.jpg as its validation identity."""
    crops = ["--crop-min", "60", "--crop-max", "120", "--batch", "4", "--seed", "3"]
    args = ["--input", "nodes", "--features", str(folder), "--val-identities", "c.jpg"]
    return train_main([*args, "--out", str(out), "--epochs", "1", *crops])


def test_scores_held_out_weights_and_refuses_weights_trained_on_validation(tmp_path, capsys):
    folder = write_node_clips(tmp_path / "nodes")
    weights = tmp_path / "w" / "spotter.pt"
    assert _train(folder, weights) == 0
    capsys.readouterr()
    assert (
        val_froc_main([str(weights), "--features", str(folder), "--val-identities", "c.jpg"]) == 0
    )
    rows = [
        line for line in capsys.readouterr().out.splitlines() if line.startswith(f"| {weights}")
    ]
    # path, sha, three points, mean, AUC, recall at 0 / 1 / 2 distinct false moments
    assert len(rows) == 1 and rows[0].count("|") == 9
    cells = rows[0].split("|")
    assert 0 <= float(cells[-3]) <= 1
    by_moment = [float(v) for v in cells[-2].split("/")]
    assert len(by_moment) == 3 and all(0 <= v <= 1 for v in by_moment)
    both = [str(weights), "--features", str(folder), "--val-identities", "c.jpg"]
    assert val_froc_main([*both, "--relative-half", "--peaks", "0.25,0.2:0.05"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("|")[1].strip() for line in lines if line.startswith(f"| {weights}")] == [
        str(weights),
        f"{weights}, half above the resting level",
        f"{weights}, peaks ± 0.25 s, prominence 0",
        f"{weights}, peaks ± 0.2 s, prominence 0.05",
    ]
    assert val_froc_main([*both, "--peaks", "0.25:x"]) == 2
    assert "--peaks: '0.25:x' is not S or S:P" in capsys.readouterr().err
    # b.jpg was a training identity of these weights: scoring them there is not validation
    assert (
        val_froc_main([str(weights), "--features", str(folder), "--val-identities", "b.jpg"]) == 2
    )
    assert "trained on validation identities: b.jpg" in capsys.readouterr().err


def test_a_folder_of_validation_clips_alone_is_scored(tmp_path, capsys):
    # benchmarks.val_seeds makes such folders: nothing in them is trained on
    folder = write_node_clips(tmp_path / "nodes")
    weights = tmp_path / "w" / "spotter.pt"
    assert _train(folder, weights) == 0
    alone = tmp_path / "alone"
    alone.mkdir()
    (alone / "clip_0003.npz").symlink_to(folder / "clip_0003.npz")  # c.jpg only
    capsys.readouterr()
    args = [str(weights), "--features", str(alone)]
    assert val_froc_main([*args, "--val-identities", "c.jpg"]) == 0
    assert any(line.startswith(f"| {weights}") for line in capsys.readouterr().out.splitlines())
    assert val_froc_main([*args, "--val-identities", "c.jpg,z.jpg"]) == 2
    assert "['z.jpg'] not in the data" in capsys.readouterr().err
