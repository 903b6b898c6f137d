"""engines.train.data, engines.train.spotter (the CLI) and engines.weights on tiny fake feature
files."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from engines.labels import EMOTIONS, KINDS
from engines.models.spotter import IGNORE
from engines.node_inputs import node_input_names
from engines.train.data import DataError, load_clips, split_by_identity, valid_runs
from engines.train.spotter import main as train_main
from engines.weights import WeightsError, load_spotter, sha256_file
from tests.helpers import CLIP_FEATURES as F
from tests.helpers import CLIP_FRAMES as LENGTH
from tests.helpers import train_args, write_clip, write_node_clips


def test_clips_tensors_and_targets(feature_dir):
    clips = load_clips(feature_dir)
    assert len(clips) == 6 and clips[0].identity == "a.jpg" and clips[1].seed == 1
    clip = clips[0]
    assert clip.x.shape == (LENGTH, F) and clip.x.dtype == torch.float32
    assert clip.valid.shape == (LENGTH,) and not clip.valid[:2].any()
    assert [t.kind for t in clip.truth] == ["micro", "macro"] and clip.blinks == 1
    t = clip.target
    assert t.apex[24] == 1.0 and t.apex[100] == 1.0
    assert t.apex[64] == 0.0  # the blink is no target
    assert t.kind[25] == KINDS.index("micro") and t.kind[110] == KINDS.index("macro")
    assert t.emotion[25] == EMOTIONS.index("positive") and t.emotion[64] == IGNORE
    assert valid_runs(clip.valid) == [(2, 140), (143, LENGTH)]


def test_split_by_identity(feature_dir):
    train, val = split_by_identity(load_clips(feature_dir), ["c.jpg"])
    assert {c.identity for c in train} == {"a.jpg", "b.jpg"} and len(val) == 2
    with pytest.raises(DataError, match="not in the data"):
        split_by_identity(load_clips(feature_dir), ["z.jpg"])


@pytest.mark.parametrize(
    "broken, message",
    [
        ("width", "but the file names"),  # values wider than the names say
        ("names", "differ from the expected"),  # another feature layout in the same folder
        ("garbage", "cannot read"),  # not an .npz at all
    ],
)
def test_bad_files_are_named(feature_dir, broken, message):
    bad = feature_dir / "clip_9999.npz"
    if broken == "width":
        write_clip(bad, "a.jpg", 9, width=F + 1)
    elif broken == "names":
        write_clip(bad, "a.jpg", 9, names=np.array([f"other{i}" for i in range(F)]))
    else:
        bad.write_bytes(b"not a zip file")
    with pytest.raises(DataError, match=message) as info:
        load_clips(feature_dir)
    assert "clip_9999.npz" in str(info.value)


def test_training_writes_verified_weights(feature_dir, tmp_path):
    out = tmp_path / "weights" / "spotter.pt"
    assert train_main(train_args(feature_dir, out)) == 0
    manifest = json.loads((out.parent / "manifest.json").read_text())
    assert manifest["file"] == "spotter.pt"
    assert manifest["sha256"] == sha256_file(out)
    assert manifest["n_features"] == F
    assert manifest["data"]["train_identities"] == ["a.jpg", "b.jpg"]
    assert manifest["data"]["val_identities"] == ["c.jpg"]
    assert "--epochs 2" in manifest["command"] and len(manifest["history"]) == 2
    assert {"micro_f1", "macro_f1", "overall_f1", "loss"} <= set(manifest["validation"])

    model, loaded = load_spotter(out, expected_features=F)
    assert loaded["sha256"] == manifest["sha256"] and not model.training
    out_full, _ = model(torch.zeros(1, 10, F))
    assert out_full.apex.shape == (1, 10)
    with pytest.raises(WeightsError, match="take 8 features"):
        load_spotter(out, expected_features=F + 1)

    data = bytearray(out.read_bytes())
    data[len(data) // 2] ^= 0x01  # one byte changed
    out.write_bytes(bytes(data))
    with pytest.raises(WeightsError) as info:
        load_spotter(out)
    message = str(info.value)
    assert str(out) in message and manifest["sha256"] in message and sha256_file(out) in message

    out.unlink()
    with pytest.raises(WeightsError, match="missing"):
        load_spotter(out)


@pytest.fixture
def layout_dir(tmp_path):
    """Fake clips in the real feature layout, so the default (motion) input can be made."""
    from stream.face.features import feature_names

    names = np.array(feature_names())
    folder = tmp_path / "layout"
    folder.mkdir()
    for i, identity in enumerate(["a.jpg", "a.jpg", "b.jpg", "c.jpg"]):
        write_clip(folder / f"clip_{i:04d}.npz", identity, i, names=names, width=len(names))
    return folder


def test_training_is_deterministic(layout_dir, tmp_path):
    shas = []
    for run in ("one", "two"):
        out = tmp_path / run / "spotter.pt"
        assert train_main(train_args(layout_dir, out, epochs=1, input_kind="motion")) == 0
        shas.append(sha256_file(out))
    assert shas[0] == shas[1]
    manifest = json.loads((out.parent / "manifest.json").read_text())
    assert manifest["input"] == "motion"
    composition = manifest["data"]["composition"]
    assert composition["train"]["identities"] == ["a.jpg", "b.jpg"]
    assert composition["train"]["families"] == {"tps": 3}
    names = [str(n) for n in np.load(layout_dir / "clip_0000.npz")["names"]]
    model, _ = load_spotter(out, feature_names=names)
    assert model.config.n_features == manifest["n_features"]


def test_node_spotter_training_is_deterministic_with_an_operating_point(tmp_path):
    folder = write_node_clips(tmp_path / "nodes")
    shas = []
    for run in ("one", "two"):
        out = tmp_path / run / "spotter.pt"
        assert train_main(train_args(folder, out, epochs=1, input_kind="nodes")) == 0
        shas.append(sha256_file(out))
    assert shas[0] == shas[1]
    manifest = json.loads((out.parent / "manifest.json").read_text())
    assert manifest["input"] == "nodes/v1" and manifest["model"]["group_sizes"]
    point = manifest["operating_point"]
    assert 0 < point["threshold"] < 1 and point["validation_clips"] == ["clip_0003.npz"]
    (row,) = manifest["history"]  # the epoch was judged at fixed thresholds, as it runs
    recalls = [row["val_recall_at"][k] for k in ("0.5", "1.0", "2.0")]
    assert all(0 <= r <= 1 for r in recalls)
    assert row["val_froc_recall"] == pytest.approx(sum(recalls) / 3, abs=1e-4)
    model, _ = load_spotter(out, feature_names=[])
    assert model.config.n_features == manifest["n_features"] == len(node_input_names())
    assert 0 <= row["val_auc"] <= 1  # the score ranked (NaN fails)


def test_checkpoints_hold_every_epoch_and_the_kept_one_is_the_shipped_bytes(tmp_path):
    folder = write_node_clips(tmp_path / "nodes")
    out = tmp_path / "w" / "spotter.pt"
    args = [*train_args(folder, out, epochs=3, input_kind="nodes"), "--checkpoints"]
    assert train_main([*args, str(tmp_path / "epochs")]) == 0
    best = json.loads((out.parent / "manifest.json").read_text())["train"]["best_epoch"]
    shas = {}
    for epoch in (1, 2, 3):
        path = tmp_path / "epochs" / f"epoch_{epoch:02d}" / "spotter.pt"
        model, manifest = load_spotter(path, feature_names=[])  # sha256 checked on load
        assert model.config.n_features == manifest["n_features"]
        assert manifest["epoch"] == epoch and manifest["data"]["val_identities"] == ["c.jpg"]
        shas[epoch] = manifest["sha256"]
    assert len(set(shas.values())) == 3  # each epoch moved the weights
    assert shas[best] == sha256_file(out)


def test_passes_multiply_an_epochs_steps_not_its_validations(tmp_path):
    folder = write_node_clips(tmp_path / "nodes")
    steps = []
    for passes in (1, 3):
        out = tmp_path / f"p{passes}" / "spotter.pt"
        args = [*train_args(folder, out, epochs=1, input_kind="nodes"), "--passes", str(passes)]
        assert train_main(args) == 0
        (row,) = json.loads((out.parent / "manifest.json").read_text())["history"]
        steps.append(row["steps"])
    # crops per epoch = ceil(passes × frames / mean crop) in batches of 4: the rounding
    # costs at most two batches
    assert steps[0] >= 2 and 3 * steps[0] - 2 <= steps[1] <= 3 * steps[0]


def test_region_files_are_refused_by_the_node_spotter(feature_dir, tmp_path, capsys):
    assert train_main(train_args(feature_dir, tmp_path / "w.pt", input_kind="nodes")) == 2
    assert "no node arrays" in capsys.readouterr().err


def test_held_out_identity_is_refused(layout_dir, tmp_path, capsys):
    args = train_args(layout_dir, tmp_path / "w.pt", epochs=1, input_kind="motion")
    assert train_main([*args, "--held-out", "b.jpg"]) == 2
    assert "held out" in capsys.readouterr().err


def test_bad_features_folder_exits_2(tmp_path, capsys):
    assert train_main(["--features", str(tmp_path / "none"), "--out", str(tmp_path / "w.pt")]) == 2
    assert "no such folder" in capsys.readouterr().err


def _no_usable_clips(folder, case):
    folder.mkdir()
    if case == "only other files":
        (folder / "notes.txt").write_text("not features")
        (folder / "truth.csv").write_text("onset,apex,offset\n")
    elif case == "no face in any clip":
        write_clip(folder / "clip_0000.npz", "a.jpg", 0)
        arrays = dict(np.load(folder / "clip_0000.npz"))
        arrays["valid"][:] = False
        np.savez(folder / "clip_0000.npz", **arrays)
    elif case == "mixed widths":
        write_clip(folder / "clip_0000.npz", "a.jpg", 0)
        wider = np.array([f"roi{i}.ch0" for i in range(F + 1)])
        write_clip(folder / "clip_0001.npz", "b.jpg", 1, names=wider, width=F + 1)


@pytest.mark.parametrize(
    "case, message",
    [
        ("empty", "no .npz feature files (empty)"),  # a folder with nothing in it
        ("only other files", "no .npz feature files (only 2 other file(s))"),  # the wrong folder
        ("no face in any clip", "none of its 1 clip(s) has a valid feature row"),  # all gaps
        ("mixed widths", f"its {F + 1} feature names differ from the expected {F}"),
    ],
)
def test_features_without_usable_clips_exit_2_in_one_line(tmp_path, capsys, case, message):
    folder = tmp_path / "features"
    _no_usable_clips(folder, case)
    args = ["--features", str(folder), "--out", str(tmp_path / "w.pt"), "--epochs", "1"]
    assert train_main(args) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and err.startswith("error: ")
    assert message in err and str(folder) in err
    assert not (tmp_path / "w.pt").exists()
