"""Tiny fake feature files for the engine tests, in the layout of
``python -m stream.datasets.features``."""

from __future__ import annotations

import numpy as np

F = 8
LENGTH = 160
NAMES = np.array([f"roi{i // 2}.ch{i % 2}" for i in range(F)])


def write_clip(path, identity, seed, names=NAMES, width=F):
    """A fake clip: noise plus a bump in every channel at each micro/macro; one blink."""
    rng = np.random.default_rng(seed)
    values = rng.normal(0, 0.1, (LENGTH, width)).astype(np.float32)
    truth = [
        (20, 24, 30, "micro", "positive"),
        (60, 64, 70, "blink", ""),
        (90, 100, 130, "macro", "negative"),
    ]
    for onset, _apex, offset, kind, _ in truth:
        if kind != "blink":
            values[onset : offset + 1] += np.hanning(offset - onset + 1)[:, None].astype("f4")
    valid = np.ones(LENGTH, bool)
    valid[:2] = False  # no reference face yet
    valid[140:143] = False  # face lost for a moment
    values[~valid] = 0.0
    np.savez_compressed(
        path,
        values=values,
        valid=valid,
        seq=np.arange(LENGTH),
        t_mono_ns=np.arange(LENGTH) * 33_333_333,
        pts_s=np.arange(LENGTH) / 30.0,
        names=names,
        fps=np.float64(30.0),
        truth_onset=np.array([t[0] for t in truth]),
        truth_apex=np.array([t[1] for t in truth]),
        truth_offset=np.array([t[2] for t in truth]),
        truth_kind=np.array([t[3] for t in truth]),
        truth_emotion=np.array([t[4] for t in truth]),
        identity=np.array(identity),
        seed=np.int64(seed),
    )
