"""Data contracts passed between stages (see design.md, "Contracts")."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# Why a captured frame was not analysed, as the ring and the pipeline count it (and the
# ``stopped`` status line reports it). Named here, once, so the metrics exporter can serve each
# cause at zero from start-up; a stage that raises adds ``stage_error:<stage name>`` beside them.
DROP_CAUSES = (
    "ring_overwrite",  # a live source outran the analysis: the oldest unread frame went
    "stopped_while_waiting",  # waiting for a free slot (a lossless ring) when the run stopped
    "unprocessed_at_stop",  # in the ring, unread, when the run stopped
    "corrupt",  # the source could not decode it
    "malformed",  # not a BGR (H, W, 3) uint8 image
    "frozen",  # a repeat of the frame before (a stuck camera): never analysed
)


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
        nodes: (O, N, 2) float32 landmark-node residual motion in aligned-face px at each
            time offset (stream/face/nodes.py), when the node front end runs; else None.
        nodes_valid: (O,) bool, the offsets that had a reference of the right age.
    """

    seq: int
    t_mono_ns: int
    values: np.ndarray
    valid: bool
    nodes: np.ndarray | None = None
    nodes_valid: np.ndarray | None = None


@dataclass(slots=True)
class FrameResults:
    """What the stages add for one frame, in stage order (design.md, "Contracts").

    The pipeline worker makes one per frame with ``gap`` and ``latency_ms``; each stage reads
    what earlier stages set and fills in its own fields. A field left None was not computed
    for this frame (its stage is absent, or had nothing to work on).

    Attributes:
        gap: frames were lost before this one (drops, a reconnect, a new frame size): stages
            reset their state.
        latency_ms: milliseconds of each stage run so far on this frame, by stage name.
        aligned: the face alignment (``align`` stage).
        features: the feature row (``features`` stage).
        apex_score: the spotter's per-frame apex score; None on an invalid row.
        apex_threshold: the decoder's running threshold after this frame; None on an invalid row.
        emotion: (E,) the spotter's emotion probabilities for this frame (over
            ``engines.labels.EMOTIONS``); None on an invalid row.
        calibrating: the spotter is still measuring the person's baseline; None without one.
        privacy: the sticker's placement drawn on this frame (``stream.privacy.stickers.
            Placement``), None when none was drawn or there is no privacy stage.
        context: blink, speaking and head speed of this frame (``engines.context.
            FrameContext``, the ``context`` stage); None without a face or that stage.
        spottable: the face is calm enough for a micro-expression to be seen (a face, no
            blink, no speaking, no fast head motion, brows still where ``brows_moving`` is
            known); None without the ``context`` stage.
        brows_moving: the brow nodes moved more than a >= 2-px expression's own over the last
            second (``stream.live.context.BrowMotion``); None without node motion.
    """

    gap: bool = False
    latency_ms: dict[str, float] = field(default_factory=dict)
    aligned: AlignedFace | None = None
    features: FeatureRow | None = None
    apex_score: float | None = None
    apex_threshold: float | None = None
    emotion: np.ndarray | None = None
    calibrating: bool | None = None
    privacy: Any = None
    context: Any = None
    spottable: bool | None = None
    brows_moving: bool | None = None


@dataclass
class Stage:
    """A named per-frame step; ``fn(frame, results)`` reads and fills in the frame's
    ``FrameResults``.

    The pipeline worker (``stream.live.pipeline``) runs its stages in order and times each;
    a stage may come from any layer (the Prometheus exporter's, the HUD's, a test's).
    """

    name: str
    fn: Callable[[Frame, FrameResults], None]
