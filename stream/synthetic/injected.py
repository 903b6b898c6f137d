"""Synthetic micro-expressions injected into a real face video, with exact ground truth.

A fully synthetic clip (``stream/synthetic/animator.py``) animates one photo; a privacy-sticker
benchmark
also needs a real person's talking, blinks, head motion, lighting and compression around the
expression. Here the real frames stay as they are, except during an injected event, where each
frame is warped by the same backward thin-plate spline as the synthetic animator
(``synthetic_tps.TpsWarper``):

    p    that frame's own dlib 68 landmarks (FaceTracker, raw frame pixels)
    q    p + w(t) * pattern          w: raised cosine over onset -> apex -> offset
    f    the TPS with f(q_i) = p_i, plus 16 anchors on a ring at 1.7x the face that never move

``pattern`` is an emotion's AU mix (``synthetic_au.combo_pattern``) scaled to a micro amplitude
(``MICRO_PX`` at a 200 px face, scaled to the real face). Frames with w = 0 are the decoded
frames, bit for bit.

Events sit on a grid, one every ``spacing_s`` (or a gap drawn from ``spacing_range_s`` per
position, never less than the previous clip's end); a position whose clip (``pre_s`` before the
onset to ``post_s`` after the offset) has a frame without a face is skipped. With
``macro_fraction`` that share of positions holds a macro-expression (kind "macro", larger and
longer) instead. With
``emotions_per_position`` each position gives one clip per emotion over the same real frames
(balanced classes, and the clips differ only inside the event).

The video is decoded once (PyAV), and only the frames of clips still being cut are kept: a
1000-frame video never sits in memory, yet each clip's landmarks are known before it is warped.

Example:
    for item in inject("lp_d3.mp4", InjectionConfig(seed=1, emotions_per_position=True)):
        item.clip, item.event           # InjectedClip, TruthEvent

``inject_video`` hands over the whole video, frame by frame, with one event per usable position
(``write_injected_video`` writes it to an .mp4; ``stream.datasets.real`` featurizes it).

Command line (the whole video with one random emotion per position, and its truth CSV):
    python -m stream.synthetic.injected VIDEO --out injected.mp4 --truth truth.csv [--seed N]
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stream.errors import MexliveError, report_error
from stream.synthetic.au import EMOTIONS, combo_pattern, face_roll, make_warpable
from stream.synthetic.decode import VideoReader
from stream.synthetic.placement import InjectionConfig, Window, windows
from stream.synthetic.schedule import raised_cosine
from stream.synthetic.tps import TpsWarper, separate
from stream.synthetic.truth import TruthEvent

EMOTION_ORDER = tuple(sorted(EMOTIONS))  # ("negative", "positive", "surprise")
# dlib's face box height / brow-to-chin distance: 1.05-1.28 over the fixture videos, ~1.16.
BOX_PER_BROW_CHIN = 1.16


@dataclass
class InjectedClip:
    """The frames (BGR uint8 (H, W, 3) each) of one injected clip and its truth in clip frames;
    ``stream.privacy.attack.Clip.from_injected`` makes it a clip to attack."""

    frames: list[np.ndarray]
    fps: float
    emotion: str
    onset: int
    offset: int
    apex: int
    identity: str  # the video's file name
    clip_id: str  # video/seed/position/emotion


@dataclass
class Injected:
    """One injected clip with its truth (frames of the clip unless said otherwise).

    The clip's untouched frames are the decoded arrays themselves, shared by the clips of one
    position and read-only (``protect`` and friends copy before drawing).
    """

    clip: InjectedClip
    event: TruthEvent  # onset/apex/offset in *video* frames; peak_px in frame pixels
    position: int
    start: int  # video frame of clip frame 0
    rest_px: np.ndarray  # (T, 68, 2) float64: the real landmarks (TPS control points p)
    weights: np.ndarray  # (T,) raised-cosine profile w(t)
    pattern: np.ndarray  # (68, 2) px displacement at the apex

    def landmarks_px(self, i: int) -> np.ndarray:
        """True landmark positions (68, 2) in clip frame ``i``: q = p + w pattern."""
        return self.rest_px[i] + self.weights[i] * self.pattern


def face_height(landmarks_px: np.ndarray) -> float:
    """Face box height (px) as dlib's detector would draw it, from the landmarks (68, 2)."""
    return BOX_PER_BROW_CHIN * float(np.linalg.norm(landmarks_px[8] - landmarks_px[17:27].mean(0)))


def frame_warper(rest_px: np.ndarray, size: tuple[int, int]) -> TpsWarper:
    """The backward TPS of one frame: control points ``rest_px`` (68, 2) (separated, as
    ``rest_px`` of ``Injected`` holds them), anchors around the landmarks' box centre."""
    centre = (rest_px.min(axis=0) + rest_px.max(axis=0)) / 2  # (2,)
    return TpsWarper(rest_px, centre, face_height(rest_px), size)


def warp_inputs(rest_px: np.ndarray, displacement: np.ndarray) -> tuple:
    """``TpsWarper.region_map`` arguments for landmarks (68, 2) moved by ``displacement``."""
    driven = rest_px + displacement  # (68, 2)
    moved = np.flatnonzero(np.any(displacement != 0.0, axis=1))  # (K,)
    return driven, 0.0, np.vstack([driven[moved], rest_px[moved]])


def inject(path: str | Path, config: InjectionConfig | None = None) -> Iterator[Injected]:
    """Injected clips of the video at ``path`` with their truth, position by position.

    Raises ``MexliveError`` when the file cannot be decoded or shows no face at all.
    """
    return _inject(path, config or InjectionConfig())


def _inject(
    path: str | Path, config: InjectionConfig, on_frame=None, max_frames: int | None = None
) -> Iterator[Injected]:
    """``inject``; ``on_frame(index, frame, fps, pts_s)`` sees every decoded frame first;
    decoding stops after ``max_frames`` (clips that would need more are not cut)."""
    name = Path(path).name
    with VideoReader(path) as source:
        fps = source.fps
        if not fps:
            raise MexliveError(f"{path}: the video does not say its frame rate")
        found = [0, 0]  # frames, frames with a face
        tracked = _tracked(source, fps, found, on_frame, max_frames)
        for window in windows(tracked, config, fps):
            yield from _inject_window(window, config, fps, name)
    if found[1] == 0:
        raise MexliveError(f"{path}: no face found in {found[0]} decoded frames")


def _tracked(
    source: VideoReader, fps: float, found: list[int], on_frame=None, max_frames=None
) -> Iterator[tuple]:
    """(index, BGR frame (H, W, 3), landmarks (68, 2) or None) of every decoded frame."""
    from stream.face.align import FaceTracker

    tracker = FaceTracker()
    while found[0] != max_frames and (frame := source.read()) is not None:
        i, t_s = found[0], found[0] / fps
        face = tracker.update(frame.image, i, round(t_s * 1e9), t_s)
        found[0] += 1
        found[1] += face.ok
        frame.image.flags.writeable = False  # shared by the clips of one position
        if on_frame is not None:
            on_frame(i, frame.image, fps, frame.pts_s)
        yield i, frame.image, separate(face.landmarks_px.astype(np.float64)) if face.ok else None


def _inject_window(
    window: Window, config: InjectionConfig, fps: float, name: str
) -> Iterator[Injected]:
    """Warp the event frames of one window for each of its emotions."""
    w0 = window.start
    rest = np.stack(window.rest)  # (T, 68, 2)
    apex_rest = rest[window.apex - w0]
    height = face_height(apex_rest)
    if config.emotions_per_position:
        emotions = EMOTION_ORDER
    else:
        rng = np.random.default_rng((config.seed, window.position, 1))
        emotions = (EMOTION_ORDER[int(rng.integers(len(EMOTION_ORDER)))],)
    weights = np.array(
        [
            raised_cosine(i, window.onset, window.apex, window.offset)
            if window.onset <= i <= window.offset
            else 0.0
            for i in range(w0, window.stop)
        ]
    )  # (T,)
    moving = np.flatnonzero(weights > 0.0)  # clip frames that change
    patterns, events = [], []
    for emotion in emotions:
        rng = np.random.default_rng((config.seed, window.position, 2, EMOTION_ORDER.index(emotion)))
        combos = EMOTIONS[emotion]
        aus = combos[int(rng.integers(len(combos)))]
        pattern = combo_pattern(aus, height, face_roll(apex_rest), rng)  # (68, 2), max 1 px
        pattern *= window.amplitude * height / 200.0
        for k in moving:  # warpable on every frame it moves, not just the apex
            make_warpable(pattern, rest[k])
        amp = np.linalg.norm(pattern, axis=1).max()
        peak = round(float(amp), 3)  # the truth as written; the pattern matches it exactly
        pattern *= peak / amp
        moved = tuple(int(j) for j in np.flatnonzero(np.linalg.norm(pattern, axis=1) >= 0.5))
        patterns.append(pattern)
        event = TruthEvent(
            window.onset,
            window.apex,
            window.offset,
            window.kind,
            emotion,
            tuple(int(a) for a in aus),
            peak,
            moved,
        )
        events.append(event)
    clips_frames = [list(window.frames) for _ in emotions]
    size = window.frames[0].shape[1::-1]  # (W, H)
    for k in moving:  # one warper per frame serves every emotion (it depends on p only)
        warper = frame_warper(rest[k], size)
        for frames, pattern in zip(clips_frames, patterns, strict=True):
            out = np.empty_like(window.frames[k])  # (H, W, 3)
            warper.warp(window.frames[k], out, *warp_inputs(rest[k], weights[k] * pattern))
            frames[k] = out
    for frames, pattern, event in zip(clips_frames, patterns, events, strict=True):
        clip = InjectedClip(
            frames=frames,
            fps=fps,
            emotion=event.emotion,
            onset=event.onset - w0,
            offset=event.offset - w0,
            apex=event.apex - w0,
            identity=name,
            clip_id=f"{name}/{config.seed}/{window.position}/{event.emotion}",
        )
        yield Injected(clip, event, window.position, w0, rest, weights, pattern)


def inject_video(
    path: str | Path,
    config: InjectionConfig,
    write: Callable[[int, float | None, np.ndarray, float], None],
    max_frames: int | None = None,
) -> tuple[list[TruthEvent], int, float]:
    """The whole video with one injected expression per usable position, each frame handed to
    ``write(index, pts_s, image, fps)`` in order, as soon as no clip can still change it; frames
    outside the events are the decoded arrays. Returns (events, frames, fps).

    Args:
        max_frames: decode only the first frames (events that end past them are not cut).
    """
    if config.emotions_per_position:
        raise MexliveError("a whole video holds one emotion per position")
    buffer: dict[int, tuple] = {}  # index -> (pts_s, frame) not written yet
    state = {"written": 0, "fps": 0.0}

    def flush(before: int) -> None:
        while state["written"] < before:
            pts, image = buffer.pop(state["written"])
            write(state["written"], pts, image, state["fps"])
            state["written"] += 1

    def on_frame(i: int, image: np.ndarray, fps: float, pts: float | None) -> None:
        state["fps"] = fps
        buffer[i] = (pts, image)
        flush(i - (math.ceil(config.longest_s * fps) + 2))  # frames in the longest clip

    events: list[TruthEvent] = []
    for item in _inject(path, config, on_frame, max_frames):
        events.append(item.event)
        for k in np.flatnonzero(item.weights > 0.0):
            pts, _ = buffer[item.start + int(k)]
            buffer[item.start + int(k)] = (pts, item.clip.frames[k])
    flush(state["written"] + len(buffer))
    return events, state["written"], state["fps"]


def write_injected_video(
    path: str | Path, out: str | Path, truth: str | Path, config: InjectionConfig
) -> list[TruthEvent]:
    """The whole video with one injected expression per usable position (.mp4), and its
    truth CSV; returns the events."""
    from stream.synthetic.truth import write_truth_csv
    from stream.synthetic.writers import H264Writer

    sinks: list[H264Writer] = []

    def write(_i: int, _pts: float | None, image: np.ndarray, fps: float) -> None:
        if not sinks:  # the size and the rate are known at the first frame
            sinks.append(H264Writer(out, image.shape[1], image.shape[0], fps))
        sinks[0].write(image)

    try:
        events, _, _ = inject_video(path, config, write)
    finally:
        for sink in sinks:
            sink.close()
    write_truth_csv(truth, events)
    return events


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m stream.synthetic.injected",
        description="Inject synthetic micro-expressions (known emotion, onset, apex, offset) "
        "into a real face video, one every --spacing seconds where the face is tracked, and "
        "write the whole video (H.264 .mp4) and its truth CSV (one row per event, frames "
        "0-based inclusive, as stream/synthetic/writers.py writes it).",
    )
    parser.add_argument("video", help="a real face video (anything PyAV decodes)")
    parser.add_argument("--out", required=True, help="injected video, .mp4")
    parser.add_argument("--truth", required=True, help="truth CSV")
    parser.add_argument("--seed", type=int, default=0, help="schedule and pattern seed")
    parser.add_argument("--spacing", type=float, default=2.5, help="s between onsets")
    args = parser.parse_args(argv)
    try:
        config = InjectionConfig(seed=args.seed, spacing_s=args.spacing)
        events = write_injected_video(args.video, args.out, args.truth, config)
    except MexliveError as exc:
        return report_error(exc)
    print(f"{len(events)} events -> {args.out}, {args.truth}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
