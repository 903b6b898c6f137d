"""What the learned spotter reads: the normalised motion rows plus the classic's score.

The raw feature row (``stream/face/features.py``) measures motion in pixels; the learned spotter
reads the same motion as z-scores against the person's own running noise (``engines/motion.py``)
and, as two more channels, the training-free classic's score (``engines/classic.py``), so it
starts from what the classic knows and learns what separates an expression from talking, and
the frame rate over 30 (1 / (30 × the frame interval in s): 1.0 at 30 fps): the state-space
model steps per frame, so it must know how long a step is to read an onset's speed at 25 or
200 fps.

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
    return (*motion_names(feature_names), "classic_score", "frame_rate")


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
        self._last_t_s: float | None = None

    @property
    def width(self) -> int:
        return len(self.names)

    def update(self, values: np.ndarray, t_s: float, valid: bool) -> np.ndarray:
        """This frame's input row (D,) float32 (a reused buffer); zeros on an invalid row."""
        motion = self.normaliser.update(values, t_s, valid)
        self._out[:-2] = motion
        if not valid:
            self.gate.reset()
            self._out[-2:] = 0.0
            self._last_t_s = None
            return self._out
        gated = self.gate.update(motion, t_s)
        self._out[-2] = classic_score(gated, self.normaliser.head_z, self.classic)
        self._out[-1] = self._rate(t_s)
        return self._out

    def _rate(self, t_s: float) -> float:
        """1 / (30 × the last frame interval in s), clipped to 0.1–10 (3–300 fps)."""
        last, self._last_t_s = self._last_t_s, t_s
        if last is None or t_s <= last:
            return 1.0
        return float(np.clip(1.0 / (30.0 * (t_s - last)), 0.1, 10.0))


def takes_motion(manifest: dict[str, Any]) -> bool:
    """Do these weights read the normalised motion rows (else the raw feature rows)?"""
    return manifest.get("input") == MOTION_INPUT


def takes_nodes(manifest: dict[str, Any]) -> bool:
    """Do these weights read the landmark-node rows (``engines/node_inputs.py``)?"""
    from engines.node_inputs import NODE_INPUT

    return manifest.get("input") == NODE_INPUT


def model_input_names(manifest: dict[str, Any], feature_names: Sequence[str]) -> tuple[str, ...]:
    """The input channels a model with this manifest reads, given this raw feature layout."""
    if takes_nodes(manifest):
        from engines.node_inputs import node_input_names

        return node_input_names()
    return input_names(feature_names) if takes_motion(manifest) else tuple(feature_names)


def model_width(manifest: dict[str, Any], feature_names: Sequence[str]) -> int:
    """The input width a model with this manifest takes on this raw feature layout."""
    return len(model_input_names(manifest, feature_names))


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
