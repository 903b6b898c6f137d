"""Recognizer data sets: stacks extracted from a real synthetic clip, with its truth."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engines.labels import EMOTIONS as EMOTION_LABELS
from stream.datasets.stacks import AU_NAMES, RecognizerDataConfig, main, make_recognizer_set
from stream.errors import MexliveError
from stream.face.flow_stack import StackConfig

EMOTIONS = set(EMOTION_LABELS)


@pytest.mark.slow
def test_stacks_of_a_synthetic_clip(tmp_path):
    config = RecognizerDataConfig(
        seconds=6.0,
        micro_per_min=40.0,
        macro_per_min=0.0,
        variants=2,
        jitter=2,
        stack=StackConfig(steps=3, size=16),
    )
    (path,) = make_recognizer_set(tmp_path, 1, seed=7, config=config, workers=1, progress=False)
    with np.load(path) as z:
        n = len(z["emotion"])
        assert n >= 2 and n == 2 * len(set(z["event"].tolist())) - int(z["skipped"])
        assert z["flow"].shape == (n, 2, 3, 16, 16) and z["mask"].shape == (n, 16, 16)
        assert set(z["emotion"].tolist()) <= EMOTIONS and set(z["kind"].tolist()) == {"micro"}
        assert z["aus"].shape == (n, len(AU_NAMES)) and z["aus"].any(axis=1).all()
        exact = z["variant"] == 0
        np.testing.assert_array_equal(z["onset"][exact], z["truth_onset"][exact])
        np.testing.assert_array_equal(z["apex"][exact], z["truth_apex"][exact])
        assert (z["apex"] > z["onset"]).all()
        assert np.abs(z["onset"] - z["truth_onset"]).max() <= 2
        assert str(z["identity"]) == "astronaut" and int(z["seed"]) == 7000
        assert json.loads(str(z["stack"]))["steps"] == 3
        flow = z["flow"].astype(np.float32)
        assert np.isfinite(flow).all()
        # a micro-expression moves the face by 1-4 px at the apex (~0.8-3 px aligned): the
        # apex field of every true interval shows it inside the ROIs
        apex_motion = np.abs(flow[exact][:, :, -1]).max(axis=(1, 2, 3))  # (n_exact,)
        assert (apex_motion > 0.2).all()


def test_bad_photo_exits_2(tmp_path, capsys):
    assert main([str(tmp_path), "--count", "1", "--photos", "nobody.jpg", "--quiet"]) == 2
    assert "nobody.jpg" in capsys.readouterr().err


def test_bad_counts_are_refused(tmp_path):
    with pytest.raises(MexliveError):
        make_recognizer_set(tmp_path, 0)
