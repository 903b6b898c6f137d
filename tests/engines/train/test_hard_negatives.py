"""engines.train.loop.mine_hard_negatives: where a model fires on real video with nothing there."""

from __future__ import annotations

import dataclasses

import torch

from engines.models.spotter import Spotter, SpotterConfig
from engines.train.data import load_clips
from engines.train.loop import TrainConfig, mine_hard_negatives
from tests.helpers import CLIP_FEATURES as F


def model_that_always_says(apex_logit: float) -> Spotter:
    model = Spotter(SpotterConfig(n_features=F, d_model=8, n_layers=1))
    with torch.no_grad():
        model.head.weight.zero_()
        model.head.bias.zero_()
        model.head.bias[0] = apex_logit  # sigmoid(apex_logit) on every frame
    return model


def test_mined_frames_are_real_valid_and_without_truth(feature_dir):
    clips = load_clips(feature_dir)
    real = dataclasses.replace(clips[0], source={"background": "real"})
    synthetic = clips[1]
    found = mine_hard_negatives(model_that_always_says(5.0), [real, synthetic], TrainConfig())
    frames = [frame for clip, frame in found]
    assert found and all(clip is real for clip, _ in found)  # synthetic clips are not mined
    assert all(real.valid[f] and real.target.apex[f] < 0.05 for f in frames)
    assert 24 not in frames and 100 not in frames  # the apexes are expressions, not mistakes
    assert 0 not in frames and 141 not in frames  # invalid rows
    quiet = mine_hard_negatives(model_that_always_says(-5.0), [real], TrainConfig())
    assert quiet == []
