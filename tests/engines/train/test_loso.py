"""engines.train.loso: one fold per subject, the held-out subject never seen in its fold's
training."""

from __future__ import annotations

import json

import pytest

from engines.train.data import load_clips
from engines.train.loop import TrainConfig
from engines.train.loso import loso
from engines.train.spotter import main as train_main

CFG = TrainConfig(epochs=2, seed=1, batch=4, crop_min=60, crop_max=120, d_model=16, n_layers=1)


def test_folds_hold_out_each_subject(feature_dir, monkeypatch):
    import engines.train.loso as module

    seen: list[set[str]] = []
    real_train = module.train

    def recording_train(train_clips, val_clips, cfg, log):
        seen.append({c.identity for c in train_clips})
        assert not val_clips  # nothing of the held-out subject chooses an epoch
        return real_train(train_clips, val_clips, cfg, log)

    monkeypatch.setattr(module, "train", recording_train)
    result = loso(load_clips(feature_dir), CFG, log=lambda s: None)
    assert result["subjects"] == ["a.jpg", "b.jpg", "c.jpg"]
    assert seen == [{"b.jpg", "c.jpg"}, {"a.jpg", "c.jpg"}, {"a.jpg", "b.jpg"}]
    # Pooled counts are the sums of the folds' (MEGC: summed before F1).
    for kind in ("micro", "macro", "overall"):
        for c in ("tp", "fp", "fn"):
            total = sum(f["counts"][kind][c] for f in result["folds"].values())
            assert result["all"]["counts"][kind][c] == total
    # Every held-out truth interval is counted once: TP + FN = the subjects' truth.
    truth = sum(1 for c in load_clips(feature_dir) for t in c.truth if t.kind != "blink")
    overall = result["all"]["counts"]["overall"]
    assert overall["tp"] + overall["fn"] == truth


@pytest.mark.slow
def test_cli_loso_writes_json_and_rejects_val_identities(feature_dir, tmp_path, capsys):
    out = tmp_path / "loso.json"
    args = [
        "--features",
        str(feature_dir),
        "--input",
        "raw",
        "--loso",
        "--loso-out",
        str(out),
        "--epochs",
        "2",
        "--crop-min",
        "60",
        "--crop-max",
        "120",
        "--batch",
        "4",
    ]
    assert train_main(args) == 0
    assert "| all (pooled) |" in capsys.readouterr().out
    assert set(json.loads(out.read_text())["folds"]) == {"a.jpg", "b.jpg", "c.jpg"}
    assert train_main([*args, "--val-identities", "a.jpg"]) == 2


def test_a_frame_of_a_video_is_that_video_s_person():
    from engines.train.loso import subject_of

    assert subject_of("st_rd2.mp4@1.5") == subject_of("st_rd2.mp4") == "st_rd2.mp4"
    assert subject_of("lp_s1.jpg") == "lp_s1.jpg"
