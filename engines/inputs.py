"""What the learned spotter reads: the normalised motion rows plus the classic's score.

The raw feature row (``stream/face/features.py``) measures motion in pixels; the learned spotter
reads the same motion as z-scores against the person's own running noise (``engines/motion.py``)
and, as one more channel, the training-free classic's score (``engines/classic.py``), so it
starts from what the classic knows and learns what separates an expression from talking.

The weights' manifest says which input a model takes (``"input": "motion"``); weights without
that key read the raw rows (the layout before this module). Live (``SpottingStage``) and
training (``engines/train/data.py``) run the same ``SpotterInput.update`` loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from engines.classic import ClassicConfig, OnsetGate, classic_score
from engines.motion import MotionNormaliser, motion_names

MOTION_INPUT = "motion"  # the manifest's "input" for weights trained on these rows


def input_names(feature_names: Sequence[str]) -> tuple[str, ...]:
    """The learned spotter's input channels for a raw feature layout."""
    return (*motion_names(feature_names), "classic_score")


class SpotterInput:
    """Raw feature rows (F,) → the learned spotter's input rows (D,), one stream.

    Args:
        feature_names: the raw layout.
        classic: the classic's settings for its score channel.
    """

    def __init__(self, feature_names: Sequence[str], classic: ClassicConfig | None = None) -> None:
        self.classic = classic or ClassicConfig()
        self.normaliser = MotionNormaliser(feature_names, self.classic.motion)
        self.gate = OnsetGate(len(self.normaliser.rois), self.classic.recent_s)
        self.names = input_names(feature_names)
        self._out = np.zeros(len(self.names), np.float32)  # (D,)

    @property
    def width(self) -> int:
        return len(self.names)

    def update(self, values: np.ndarray, t_s: float, valid: bool) -> np.ndarray:
        """This frame's input row (D,) float32 (a reused buffer); zeros on an invalid row."""
        motion = self.normaliser.update(values, t_s, valid)
        self._out[:-1] = motion
        if not valid:
            self.gate.reset()
            self._out[-1] = 0.0
            return self._out
        gated = self.gate.update(motion, t_s)
        self._out[-1] = classic_score(gated, self.normaliser.head_z, self.classic)
        return self._out


def takes_motion(manifest: dict[str, Any]) -> bool:
    """Do these weights read the normalised motion rows (else the raw feature rows)?"""
    return manifest.get("input") == MOTION_INPUT


def model_width(manifest: dict[str, Any], feature_names: Sequence[str]) -> int:
    """The input width a model with this manifest takes on this raw feature layout."""
    return len(input_names(feature_names)) if takes_motion(manifest) else len(feature_names)


def spotter_inputs(
    values: np.ndarray, valid: np.ndarray, t_s: np.ndarray, feature_names: Sequence[str]
) -> np.ndarray:
    """A whole clip's input rows (L, D) float32, frame by frame as live.

    Args:
        values: (L, F) raw rows; valid: (L,) bool; t_s: (L,) media time in seconds.
    """
    inputs = SpotterInput(feature_names)
    out = np.zeros((len(values), inputs.width), np.float32)  # (L, D)
    for i in range(len(values)):
        out[i] = inputs.update(values[i], float(t_s[i]), bool(valid[i]))
    return out
