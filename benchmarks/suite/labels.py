"""Labels of the suite's injected expressions and of its plain video: amplitude, region group,
context, distractor. Each rule is written here once; the tables and docs quote them.

- **Amplitude**: the injector's ``peak_px`` (the largest landmark displacement at the apex,
  frame pixels) scaled to a face with 90 px between the eye centres, with the inter-ocular
  distance (IOD) of the landmarks tracked at the apex (the nearest frame with a face):
  ``amplitude_90 = peak_px × 90 / IOD``. Bins: < 1, 1–2, 2–3, ≥ 3 px.
- **Region group** of an expression: the group whose landmarks its action units move most
  (``AU_TABLE`` displacements summed per group): brows (17–26), eyes (36–47), nose (27–35,
  with the nasolabial regions), mouth (48–67), chin (the jaw line 0–16).
- **Context** (from the PLAIN clip's landmarks at the same frames, so the injected motion
  cannot label itself; ``engines/context.py`` detects speaking and head motion): *near head
  motion* when any frame from ``NEAR_S`` before the onset to ``NEAR_S`` after the offset has
  the head moving faster than ``HEAD_FAST_PX_S`` (px/s at 90 px between the eye centres: five
  times a still face's landmark jitter of ≈ 20 px/s, a nod or a turn); else *near talking*
  when any frame there is speaking; else *calm*.
- **Distractor** of a false alarm on plain video: *blink* when a blink frame lies within
  ``DISTRACTOR_S`` of its interval; else *head motion*; else *speaking*; else *none*.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from engines.context import ClipContext, ContextConfig, clip_context
from stream.synthetic.au import AU_TABLE

HEAD_FAST_PX_S = 100.0
CONTEXT = ContextConfig(head_moving_px_s=HEAD_FAST_PX_S)
NEAR_S = 0.5  # an expression within this of talking / head motion is "near" it
DISTRACTOR_S = 0.2  # a false alarm within this of a blink / word / head move "is on" it
AMPLITUDE_BINS = (("< 1", 0.0, 1.0), ("1–2", 1.0, 2.0), ("2–3", 2.0, 3.0), ("≥ 3", 3.0, math.inf))
CONTEXTS = ("calm", "near talking", "near head motion")
DISTRACTORS = ("blink", "head motion", "speaking", "none")
GROUPS = ("brows", "eyes", "nose", "mouth", "chin")
# dlib-68 index → group index (GROUPS order)
LANDMARK_GROUP = np.array([4] * 17 + [0] * 10 + [2] * 9 + [1] * 12 + [3] * 20, np.intp)  # (68,)
LEFT_EYE, RIGHT_EYE = slice(36, 42), slice(42, 48)


def roi_group(roi: str) -> str:
    """The group of a feature row's region (``stream/face/rois.py`` names)."""
    if roi.startswith("brow"):
        return "brows"
    if roi.startswith("eye"):
        return "eyes"
    if roi.startswith(("nose", "nasolabial")):
        return "nose"
    if roi.startswith("mouth"):
        return "mouth"
    return "chin"


def inter_ocular_px(landmarks_px: np.ndarray) -> float:
    """Distance between the eye centres of (68, 2) landmarks, px."""
    left, right = landmarks_px[LEFT_EYE].mean(0), landmarks_px[RIGHT_EYE].mean(0)
    return float(np.linalg.norm(right - left))


def amplitude_90(peak_px: float, landmarks_px: np.ndarray, apex: int) -> float:
    """``peak_px`` at 90 px between the eye centres (IOD at the nearest frame with a face to
    ``apex``; NaN when the clip has none). landmarks_px: (L, 68, 2), NaN rows without a face."""
    seen = np.flatnonzero(np.isfinite(landmarks_px).all(axis=(1, 2)))  # (N,)
    if seen.size == 0:
        return float("nan")
    nearest = seen[np.argmin(np.abs(seen - apex))]
    return float(peak_px) * 90.0 / inter_ocular_px(landmarks_px[nearest])


def amplitude_bin(amplitude: float) -> str:
    for name, lo, hi in AMPLITUDE_BINS:
        if lo <= amplitude < hi:
            return name
    return AMPLITUDE_BINS[0][0]  # NaN or < 0 never happens for an injected expression


def primary_group(aus: tuple[int, ...]) -> str:
    """The group the action units move most (summed ``AU_TABLE`` displacement)."""
    weight = np.zeros(len(GROUPS))
    for au in aus:
        for landmark, (dx, dy) in AU_TABLE.get(au, {}).items():
            weight[LANDMARK_GROUP[landmark]] += math.hypot(dx, dy)
    return GROUPS[int(np.argmax(weight))]


def _span(onset: int, offset: int, margin_s: float, fps: float, length: int) -> slice:
    margin = round(margin_s * fps)
    return slice(max(onset - margin, 0), min(offset + margin + 1, length))


def face_context(landmarks_px: np.ndarray, valid: np.ndarray, fps: float) -> ClipContext:
    """Blinks, speaking and head motion of a clip (frame i at i / fps) from its landmarks
    (L, 68, 2), NaN rows without a face."""
    t_s = np.arange(len(valid)) / fps
    seen = np.asarray(valid, bool) & np.isfinite(landmarks_px).all(axis=(1, 2))
    return clip_context(landmarks_px, t_s, seen, CONTEXT)


def calm_onsets(context: ClipContext, valid: np.ndarray, fps: float) -> tuple[int, ...]:
    """Onset frames where an expression of up to 0.5 s would be *calm* by ``context_of``
    (nothing but a face from ``NEAR_S`` before to ``NEAR_S`` after it), at least 1.3 s into
    the clip and 0.3 s before its end (the injector's margins), 2.2 s apart."""
    busy = context.speaking | context.head_moving | ~np.asarray(valid, bool)  # (L,)
    before, after = round(NEAR_S * fps), round((0.5 + NEAR_S) * fps)
    o, last = max(round(1.3 * fps), before), len(busy) - round(0.8 * fps) - 1
    onsets = []
    while o <= last:
        if busy[o - before : o + after + 1].any():
            o += 1
            continue
        onsets.append(o)
        o += round(2.2 * fps)
    return tuple(onsets)


def context_of(onset: int, offset: int, fps: float, context: ClipContext) -> str:
    """calm / near talking / near head motion (module docstring)."""
    near = _span(onset, offset, NEAR_S, fps, len(context.speaking))
    if np.any(context.head_moving[near]):
        return "near head motion"
    if np.any(context.speaking[near]):
        return "near talking"
    return "calm"


def distractor_of(onset: int, offset: int, fps: float, context: ClipContext) -> str:
    """blink / head motion / speaking / none (module docstring)."""
    on = _span(onset, offset, DISTRACTOR_S, fps, len(context.blink))
    if np.any(context.blink[on]):
        return "blink"
    if np.any(context.head_moving[on]):
        return "head motion"
    if np.any(context.speaking[on]):
        return "speaking"
    return "none"


@dataclass(frozen=True)
class EventLabel:
    """One injected expression of the suite and its labels."""

    clip: int  # index of its injected clip in the suite
    onset: int
    apex: int
    offset: int
    amplitude_90: float  # px at 90 px inter-ocular
    amplitude_bin: str
    context: str
    group: str
    spottable: bool = False  # the live rule (calm, brows still) on the plain video at onset
