"""Alignment benchmark: tracking quality on every fixture video, the landmark smoother's
trade-off, and the per-frame cost of alignment + ROI flow + features.

    python -m benchmarks.bench_align

Table 1, per fixture video (../shared/fixtures or $MEXLIVE_FIXTURES):
  face       frames with a tracked face / frames
  redetect   detector runs after the first, per minute of video
  jitter     landmark jitter in aligned-face px (160×160 face): the std of the stable points
             (eye corners, nose ridge) around their own 5-frame centred moving average, on the
             still parts (frames whose 5-frame mean moved < 0.5 px), raw and One-Euro smoothed
Table 2: the One-Euro filter on a known signal: a 1 px, 200 ms pulse (a micro-expression's
  size and length) plus Gaussian jitter of σ 0.3 px at 30 fps: peak kept and jitter left,
  for a few settings; the default is marked.
Table 3: per-frame cost on lp_d9.mp4 (512×480, decoded beforehand): alignment, features
  (two ROI flows + pooling + appearance), and both; median and p99 ms.
Table 4: where the face detector's box sits on the 68 landmarks it leads to (side / IOD,
  centre below the eye midpoint / IOD), on every 25th frame of the training fixture videos and
  the corpus's train clips: the source of ``TrackerConfig.box_scale`` and ``box_shift``.
Table 5: does the track depend on when it started? Two tracks of each fixture video, one from
  frame 0 and one from 2 s in, compared on the frames both saw after the later one's first
  second: mean landmark gap and frames with identical landmarks, for the fixed box geometry
  mexlive uses and for a box re-learnt at each detection (the tracker before 2026-12-07).
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np

from stream.face.align import FaceTracker, TrackerConfig, eye_centres, inter_ocular
from stream.face.features import FeatureExtractor
from stream.face.flow import warm_up
from stream.face.rois import STABLE_POINTS
from stream.face.smoothing import OneEuroConfig, OneEuroFilter


def fixture_videos() -> list[Path]:
    default = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
    root = Path(os.environ.get("MEXLIVE_FIXTURES") or default)
    return sorted((root / "videos").glob("*.mp4"))


def decode(path: Path) -> tuple[list[np.ndarray], list[float], float]:
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [(f.to_ndarray(format="bgr24"), f.time) for f in container.decode(stream)]
        fps = float(stream.average_rate)
    return [f for f, _ in frames], [t for _, t in frames], fps


def jitter(points: np.ndarray) -> float:
    """(N, K, 2) aligned points of consecutive frames → std around the 5-frame moving mean,
    on frames where that mean itself moved < 0.5 px."""
    kernel = np.ones(5) / 5
    smooth = np.apply_along_axis(lambda s: np.convolve(s, kernel, mode="same"), 0, points)
    core = slice(2, len(points) - 2)
    resid, mean = points[core] - smooth[core], smooth[core]
    still = np.r_[False, np.linalg.norm(np.diff(mean, axis=0), axis=2).max(1) < 0.5]
    return float(resid[still].std()) if still.any() else float("nan")


def track(frames, times, smoothing: bool):
    config = TrackerConfig() if smoothing else TrackerConfig(smoothing=None, pose_smoothing=None)
    tracker = FaceTracker(config)
    aligned = [
        tracker.update(im, i, 0, t) for i, (im, t) in enumerate(zip(frames, times, strict=True))
    ]
    return tracker, aligned


def table_tracking(videos: list[Path]) -> None:
    print(
        "| video | size | frames | face / frames | redetections / min | jitter raw px "
        "| jitter smoothed px |"
    )
    print("|---|---|---:|---:|---:|---:|---:|")
    for path in videos:
        frames, times, fps = decode(path)
        row = {}
        for smoothing in (False, True):
            tracker, aligned = track(frames, times, smoothing)
            ok = [a for a in aligned if a.ok]
            # the smoothed filter acts on the transform; measure it on the aligned stable points
            pts = np.array([a.landmarks[list(STABLE_POINTS)] for a in ok])
            row[smoothing] = (len(ok), tracker.detections, jitter(pts) if len(pts) > 10 else np.nan)
        minutes = len(frames) / fps / 60
        h, w = frames[0].shape[:2]
        print(
            f"| {path.name} | {w}×{h} | {len(frames)} | {row[True][0]} / {len(frames)} "
            f"| {(row[True][1] - 1) / minutes:.1f} | {row[False][2]:.3f} | {row[True][2]:.3f} |"
        )
    print()


def table_one_euro() -> None:
    fps, rng = 30.0, np.random.default_rng(7)
    t = np.arange(600) / fps
    pulse = ((t >= 10.0) & (t < 10.2)).astype(np.float32)
    noise = rng.normal(0, 0.3, t.size).astype(np.float32)
    print("| One-Euro min_cutoff Hz | beta | pulse peak kept | jitter left (σ 0.3 px in) |")
    print("|---:|---:|---:|---:|")
    for min_cutoff, beta in ((1.0, 0.0), (2.0, 0.05), (3.0, 0.05), (5.0, 0.05), (2.0, 0.5)):
        config = OneEuroConfig(min_cutoff_hz=min_cutoff, beta=beta)
        runs = []
        for signal in (pulse, pulse + noise):
            filt = OneEuroFilter(config)
            runs.append(
                np.array(
                    [
                        filt(np.array([[v]], np.float32), ti)[0, 0]
                        for v, ti in zip(signal, t, strict=True)
                    ]
                )
            )
        clean, noisy = runs
        left = (noisy - clean)[30:290].std() / 0.3
        mark = " (default)" if config == OneEuroConfig() else ""
        print(f"| {min_cutoff}{mark} | {beta} | {clean.max():.0%} | {left:.0%} |")
    print()


def time_predictor(frames: list[np.ndarray]) -> list[float]:
    """The 68-point predictor alone, on each frame's grey image in the first frame's face box."""
    import cv2
    import dlib

    from stream.face.models import detect_largest_face, landmark_predictor

    box = detect_largest_face(cv2.cvtColor(frames[0], cv2.COLOR_BGR2RGB))
    rect, predictor, ms = dlib.rectangle(*box), landmark_predictor(), []
    for image in frames:
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        t0 = time.perf_counter()
        predictor(gray, rect)
        ms.append((time.perf_counter() - t0) * 1e3)
    return ms


def table_cost(videos: list[Path]) -> None:
    path = next((v for v in videos if v.name == "lp_d9.mp4"), None)
    if path is None:
        return
    frames, times, _ = decode(path)
    warm_up()
    tracker, extractor = FaceTracker(), FeatureExtractor()
    align_ms, feat_ms = [], []
    for i, (image, t_s) in enumerate(zip(frames, times, strict=True)):
        t0 = time.perf_counter()
        aligned = tracker.update(image, i, 0, t_s)
        t1 = time.perf_counter()
        extractor.update(aligned)
        t2 = time.perf_counter()
        align_ms.append((t1 - t0) * 1e3)
        feat_ms.append((t2 - t1) * 1e3)
    total = np.add(align_ms, feat_ms)
    predictor_ms = time_predictor(frames)
    print(f"| per frame on {path.name} ({len(frames)} frames) | median ms | p99 ms |")
    print("|---|---:|---:|")
    rows = (
        ("dlib 68-point predictor alone", predictor_ms),
        ("alignment (all of it)", align_ms),
        ("features (2 ROI flows, pooling, appearance)", feat_ms),
        ("alignment + features", total),
    )
    for name, values in rows:
        p50, p99 = np.percentile(values, [50, 99])
        print(f"| {name} | {p50:.2f} | {p99:.2f} |")
    print()


def geometry_frames(videos: list[Path]) -> list[np.ndarray]:
    """Every 25th frame of the first 400 of the training fixture videos (the suite's held-out
    ones left out) and the corpus's train clips."""
    import csv

    import av

    from stream.datasets.recipe import HELD_OUT_VIDEOS

    paths = [v for v in videos if v.name not in HELD_OUT_VIDEOS]
    corpus = videos[0].parents[1] / "corpus" if videos else None
    if corpus is not None and (corpus / "manifest.csv").is_file():
        with open(corpus / "manifest.csv", newline="") as fh:
            paths += [corpus / r["file"] for r in csv.DictReader(fh) if r["split"] == "train"]
    frames = []
    for path in paths:
        with av.open(str(path)) as container:
            for i, frame in enumerate(container.decode(video=0)):
                if i >= 400:
                    break
                if i % 25 == 0:
                    frames.append(frame.to_ndarray(format="bgr24"))
    return frames


def box_geometry(box: tuple[int, int, int, int], landmarks: np.ndarray) -> tuple[float, float]:
    """(side / IOD, centre below the eye midpoint / IOD) of a detector box on its landmarks."""
    iod = inter_ocular(landmarks)
    eye_mid = sum(eye_centres(landmarks)) / 2
    return (box[2] - box[0]) / iod, ((box[1] + box[3]) / 2 - eye_mid[1]) / iod


def table_box_geometry(videos: list[Path]) -> None:
    import cv2

    tracker, scales, shifts = FaceTracker(), [], []
    for image in geometry_frames(videos):
        tracker._gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        box, _ = tracker._detect()
        if box is None:
            continue
        scale, shift = box_geometry(box, tracker._predict(box))
        scales.append(scale)
        shifts.append(shift)
    print(f"| detector box on {len(scales)} faces | median | p10 | p90 | mexlive uses |")
    print("|---|---:|---:|---:|---:|")
    config = TrackerConfig()
    for name, values, used in (
        ("side / IOD", scales, config.box_scale),
        ("centre below eye midpoint / IOD", shifts, config.box_shift),
    ):
        p10, p50, p90 = np.percentile(values, [10, 50, 90])
        print(f"| {name} | {p50:.3f} | {p10:.3f} | {p90:.3f} | {used} |")
    print()


class LearntBoxTracker(FaceTracker):
    """The tracker before 2026-12-07: the box geometry re-learnt at each detection."""

    def _predict(self, box):
        landmarks = super()._predict(box)
        if self._landmarks is None:  # a detection: this box is the detector's
            scale, shift = box_geometry(box, landmarks)
            self.config = TrackerConfig(box_scale=scale, box_shift=shift)
        return landmarks


def table_track_gap(videos: list[Path]) -> None:
    print(
        "| video | frames compared | box | mean landmark gap px | max gap px | identical frames |"
    )
    print("|---|---:|---|---:|---:|---:|")
    for path in videos:
        frames, times, fps = decode(path)
        later = round(2 * fps)
        compare_from = later + round(fps)
        if compare_from >= len(frames) - 10:
            continue
        for name, cls in (("fixed (mexlive)", FaceTracker), ("re-learnt", LearntBoxTracker)):
            tracks = []
            for start in (0, later):
                tracker = cls()
                tracks.append(
                    {
                        i: a.landmarks_px
                        for i in range(start, len(frames))
                        if (a := tracker.update(frames[i], i, 0, times[i])).ok
                    }
                )
            shared = [i for i in sorted(tracks[1]) if i >= compare_from and i in tracks[0]]
            gaps = np.array(
                [np.linalg.norm(tracks[0][i] - tracks[1][i], axis=1).mean() for i in shared]
            )
            print(
                f"| {path.name} | {len(shared)} | {name} | {gaps.mean():.2f} | {gaps.max():.2f} "
                f"| {(gaps == 0).mean():.0%} |"
            )
    print()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_align",
        description=__doc__.split("\n\n")[0],
        epilog="Reads the fixture videos from ../shared/fixtures or $MEXLIVE_FIXTURES.",
    )
    parser.parse_args(argv)  # no options: --help says what it measures
    machine = f"{platform.machine()}, {os.cpu_count()} cores"
    print(f"machine: {machine}, Python {platform.python_version()}\n")
    videos = fixture_videos()
    if not videos:
        print("fixture videos not found: set MEXLIVE_FIXTURES; only table 2\n")
    else:
        table_tracking(videos)
    table_one_euro()
    table_cost(videos)
    if videos:
        table_box_geometry(videos)
        table_track_gap(videos)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
