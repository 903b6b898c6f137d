"""The live-path checks of ``bench_privacy``: a whole test video through the live spotting
stage, clean and with the textured sticker on the causal root (micro-expressions found, and
with the right emotion), and the cache that lets a rerun skip them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from stream.face.features import FeatureExtractor
from stream.privacy.attack import ClipSource
from stream.privacy.stickers import Sticker, StickerPlacer


def stream_check(
    frames: Iterable[np.ndarray], fps: float, truth: list, root: str | None
) -> tuple[int, int, int]:
    """(micro truths, found by the live spotting stage, found with the right emotion) over a
    whole video, clean (root None) or with the textured sticker on ``root``. The live path:
    baseline, spotter, decoder and the recognizer's fusion."""
    from engines.eval.metrics import spotting_matches
    from stream.contracts import Frame, FrameResults
    from stream.face.align import FaceTracker
    from stream.live.recognition import EventRecognizer
    from stream.live.spotting import SpottingStage

    decided: list = []
    stage = SpottingStage(lambda event: None, backend="torch", recognizer=EventRecognizer())
    stage._emit = decided.append  # keep the decoder's intervals (frame indices) as they are
    protector, tracker, extractor = FaceTracker(), FaceTracker(), FeatureExtractor()
    placer = StickerPlacer(Sticker.design("textured"), root) if root else None
    for i, image in enumerate(frames):
        t_s = i / fps
        t_ns = round(t_s * 1e9)
        if placer is not None:  # the protector tracks the clean frame, draws on a copy
            clean, image = image, image.copy()
            placer.apply(image, protector.update(clean, i, t_ns, t_s))
        aligned = tracker.update(image, i, t_ns, t_s)
        row = extractor.update(aligned)
        stage(Frame(i, t_ns, t_s, image), FrameResults(aligned=aligned, features=row))
    stage.finish()  # the clip ended: decide what is still open, as the live stage does
    micro_truth = [e for e in truth if e.kind == "micro"]
    micro = [s for s in decided if s.kind == "micro"]
    spans = [(s.onset_seq, s.offset_seq) for s in micro]
    matches = spotting_matches(spans, [(e.onset, e.offset) for e in micro_truth])
    right = sum(micro[p].emotion == micro_truth[t].emotion for p, t in matches)
    return len(micro_truth), len(matches), right


def synthetic_check(source: ClipSource, root: str | None) -> tuple[int, int, int]:
    animator = source.animator()
    n = round(source.seconds * source.fps)
    frames = (animator.render(i) for i in range(n))
    return stream_check(frames, source.fps, animator.events_between(0, n), root)


def video_check(video: Path, out_dir: Path, config, root: str | None) -> tuple[int, int, int]:
    """``stream_check`` on the whole real video with one injected micro-expression per
    position (written once as H.264, like a camera file, with its truth)."""
    from stream.synthetic.injected import write_injected_video
    from stream.synthetic.truth import read_truth_csv

    mp4 = out_dir / f"injected_{video.stem}_{config.seed}.mp4"
    csv = mp4.with_suffix(".csv")
    if not (mp4.is_file() and csv.is_file()):
        write_injected_video(video, mp4, csv, config)
    truth = read_truth_csv(csv)
    return with_video(mp4, lambda frames, fps: stream_check(frames, fps, truth, root))


def cached_check(out_dir: Path, key: str, check, *args) -> tuple[int, int, int]:
    """``check(*args)`` (a stream check), remembered in ``out_dir`` under ``key``."""
    path = out_dir / "features" / f"check_live_{key}.json"
    if path.is_file():
        return tuple(json.loads(path.read_text()))
    result = check(*args)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result))
    return result


def with_video(path: Path, use):
    """``use(frames, fps)`` over the decoded BGR frames of the file at ``path`` (PyAV)."""
    from stream.capture.sources import AVSource

    with AVSource(path) as source:
        return use((frame.image for frame in iter(source.read, None)), source.fps or 30.0)


def check_row(name: str, clean: tuple, protected: tuple) -> str:
    return (
        f"| {name} | {clean[0]} | {clean[1]} ({clean[2]} right) | "
        f"{protected[1]} ({protected[2]} right) |"
    )
