"""Data contracts passed between stages (see design.md, "Contracts")."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(slots=True)
class Frame:
    """One captured frame.

    Attributes:
        seq: the source's own 0-based frame index (gaps mean frames were lost upstream).
        t_mono_ns: capture time on the monotonic clock (``time.monotonic_ns``).
        pts_s: the source's presentation timestamp in seconds (None when it has none).
        image: BGR uint8 (H, W, 3). Owned by the ring: valid until the consumer's next ``get``.
        segment: how many times the source reconnected before this frame; a change is a gap.
    """

    seq: int
    t_mono_ns: int
    pts_s: float | None
    image: np.ndarray
    segment: int = 0

    @property
    def t_s(self) -> float:
        """Media time: the source's timestamp when it has one (files replayed faster than real
        time keep their own clock), else the capture clock."""
        return self.pts_s if self.pts_s is not None else self.t_mono_ns / 1e9


@dataclass(slots=True)
class SourceFrame:
    """What a source hands the capture thread: pixels plus the source's own clock."""

    image: np.ndarray  # (H, W, 3) BGR uint8
    pts_s: float | None
    index: int  # the source's own 0-based frame index
    owned: bool = False  # a fresh array nobody else touches: the ring may keep it uncopied


@dataclass(slots=True)
class AlignedFace:
    """One frame's face, warped to the canonical face (design.md, "Contracts").

    Attributes:
        seq, t_mono_ns: from the frame.
        face: (S, S) uint8 grey aligned face, or None when ``ok`` is False. A reused buffer:
            valid until the tracker's next ``update``.
        landmarks: (68, 2) float32 smoothed landmarks in aligned-face pixels, or None.
        ok: a usable face this frame.
        landmarks_px: (68, 2) float32 raw landmarks in frame pixels (for drawing), or None.
        transform: (2, 3) float32 frame → aligned-face similarity, or None.
        reason: why not ok: "no_face", "too_small", "too_dark", "overexposed",
            "out_of_frame", "drift"; "" when ok.
        redetected: the face was (re)acquired by the detector this frame: a discontinuity.
        n_faces: faces the detector saw at the last detection (the largest is tracked).
        change: "face_found" / "face_lost" when the state flipped this frame, else None.
        t_s: media time of the frame (``Frame.t_s``); features and smoothing run on it.
    """

    seq: int
    t_mono_ns: int
    face: np.ndarray | None
    landmarks: np.ndarray | None
    ok: bool
    landmarks_px: np.ndarray | None = None
    transform: np.ndarray | None = None
    reason: str = ""
    redetected: bool = False
    n_faces: int = 0
    change: str | None = None
    t_s: float = 0.0


@dataclass(slots=True)
class FeatureRow:
    """Per-frame features for the spotter (design.md, "Contracts").

    Attributes:
        seq, t_mono_ns: from the frame.
        values: (F,) float32; zeros when not valid (never invented: check ``valid``).
        valid: the face was tracked here and over the whole reference span, with no gap.
    """

    seq: int
    t_mono_ns: int
    values: np.ndarray
    valid: bool


@dataclass
class Stage:
    """A named per-frame step; ``fn(frame, results)`` may add to the per-frame results dict.

    The pipeline worker (``stream.live.pipeline``) runs its stages in order and times each;
    a stage may come from any layer (the Prometheus exporter's, the HUD's, a test's).
    """

    name: str
    fn: Callable[[Frame, dict[str, Any]], None]
