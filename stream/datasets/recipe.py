"""The shipped spotter's data, one command: which faces, families, videos and rates, and what
is held out of all of it.

    python -m stream.datasets.recipe OUT_DIR [--workers 2]

writes OUT_DIR/train/<set>/ and OUT_DIR/validation/<set>/ (``engines.train`` reads a folder
and its subfolders), each set made by ``stream.datasets.features`` (synthetic faces) or
``stream.datasets.real`` (real video, injected or plain). Everything is a pure function of
the names and seeds below, so the same command gives the same files.

- **Training**: synthetic faces from two deformation families (thin-plate splines at 25 to
  200 fps, a piecewise-affine mesh at 25 and 30) on the training photos and frames of the
  training videos, with micro-expressions of 0.5–5 px, left/right asymmetry, varied
  onset/apex/offset profiles, head drift and jerks, lighting drift, sensor noise and several
  H.264 qualities; plus micro- (and some macro-) expressions of 0.5–4 px at 90 px between the
  eyes injected into the training fixture videos and every corpus clip marked ``train``
  (``stream/datasets/corpus.py``), twelve seeds each, and the same videos with nothing injected
  (real talking, blinks, laughter and head motion as negatives). The main positive source is
  real video.
- **Validation** (epoch and operating point): a photo and a video of people in neither
  training nor the suite (the trainer's ``--val-identities`` may move corpus ``train`` clips
  there too).
- **Held out of both**: ``HELD_OUT_VIDEOS``, ``HELD_OUT_PHOTOS``, the corpus ``validation``
  clips and the third deformation family (Gaussian kernels): the cross-domain suite
  (``benchmarks/cross_suite.py``). ``make`` refuses a training list that names one.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from stream.datasets.corpus import check_training_videos, corpus_paths
from stream.errors import MexliveError, report_error

TRAIN_PHOTOS = ("astronaut", "lp_d30.jpg", "lp_s1.jpg", "tpsmm_source.png")
TRAIN_VIDEOS = (
    "st_rd2.mp4",
    "st_wda_bm.mp4",
    "vr_1.mp4",
    "tpsmm_driving.mp4",
    "lp_d0.mp4",
    "lp_d3.mp4",
    "lp_d6.mp4",
)
# lp_d0 (78 frames, gaze shifts) has no stretch long enough to inject into: plain only.
INJECT_VIDEOS = tuple(v for v in TRAIN_VIDEOS if v != "lp_d0.mp4")
# Frames of the training videos as more identities for the animator (two per video).
TRAIN_FRAMES = tuple(f"{video}@{t}" for video in TRAIN_VIDEOS for t in ("1.0", "2.5"))
VAL_PHOTOS = ("lp_s2.jpg", "lp_d11.mp4@1.0")
VAL_VIDEOS = ("lp_d11.mp4",)
HELD_OUT_VIDEOS = ("st_rd34.mp4", "st_wda_em.mp4", "vr_2.mp4", "lp_d9.mp4", "lp_d5.mp4")
HELD_OUT_PHOTOS = ("lp_d9.jpg",)  # a still of lp_d9.mp4's person: held out with the video
TRAIN_FAMILIES = ("tps", "mesh")
ALL_RATE_FAMILIES = ("tps",)  # the families made at every rate; the others at 25 and 30 fps
HELD_OUT_FAMILY = "kernel"
# (fps, clips per family, seconds, H.264 crf, face height px): the world's cameras.
RATES = (
    (25.0, 8, 20.0, 23, 180.0),
    (30.0, 8, 20.0, 16, 200.0),
    (60.0, 5, 15.0, 20, 220.0),
    (100.0, 3, 10.0, 18, 200.0),
    (200.0, 2, 8.0, 16, 240.0),
)
EXPRESSIONS = {
    "micro_per_min": 10.0,
    "macro_per_min": 3.0,
    "micro_px": (0.5, 5.0),
    "asymmetry": 0.5,
    "profile_jitter": 0.5,
}
REAL_SEEDS = tuple(range(100, 112))  # twelve placements of each injected real video (>= 60 min)
# px at a 200 px face box ≈ 0.5–4 px at 90 px between the eyes (the suite's range)
REAL_AMPLITUDE_PX = (0.45, 3.6)
LARGE_PIXELS = 1_000_000  # frames above this many pixels (1080p) get fewer injection seeds
VAL_SEEDS = (200, 201)
MACRO_FRACTION = 0.2


@dataclass(frozen=True)
class Part:
    """One set of the recipe: where it goes and how it is made."""

    folder: str  # under OUT_DIR
    kind: str  # "synthetic" | "real" | "plain"
    names: tuple[str, ...]  # identities (photos, VIDEO@s) or videos
    seed: int = 0
    family: str = "tps"
    fps: float = 30.0
    count: int = 0
    seconds: float = 0.0
    crf: int = 16
    face_px: float = 200.0
    seeds: tuple[int, ...] = ()  # real parts: the injection seeds (default REAL_SEEDS)


def parts() -> list[Part]:
    """Every set of the recipe, training first."""
    faces = (*TRAIN_PHOTOS, *TRAIN_FRAMES)
    out = []
    for f, family in enumerate(TRAIN_FAMILIES):
        for r, (fps, count, seconds, crf, face_px) in enumerate(RATES):
            if family not in ALL_RATE_FAMILIES and fps > 30:
                continue  # the mesh renders ~6 frames/s here: its 60-200 fps sets cost 20 min
            folder = f"train/{family}_{fps:g}fps"
            seed = 10 * f + r
            out.append(
                Part(folder, "synthetic", faces, seed, family, fps, count, seconds, crf, face_px)
            )
    out.append(Part("train/real_injected", "real", INJECT_VIDEOS))
    out.append(Part("train/real_plain", "plain", TRAIN_VIDEOS))
    # every corpus clip marked train (about 30 people); a 1080p clip costs ~10× a 256-px one
    # to inject into, align and featurize, so those get REAL_SEEDS[:2]
    small = tuple(corpus_paths("train", max_pixels=LARGE_PIXELS))
    large = tuple(corpus_paths("train", min_pixels=LARGE_PIXELS + 1, warn=lambda _: None))
    if small:
        out.append(Part("train/corpus_injected", "real", small))
    if large:
        out.append(Part("train/corpus_injected_large", "real", large, seeds=REAL_SEEDS[:2]))
    if small or large:
        out.append(Part("train/corpus_plain", "plain", small + large))
    for f, family in enumerate(TRAIN_FAMILIES):
        folder = f"validation/{family}"
        out.append(Part(folder, "synthetic", VAL_PHOTOS, 50 + f, family, 30.0, 2, 20.0))
    out.append(Part("validation/real_injected", "real", VAL_VIDEOS, seed=1))
    out.append(Part("validation/real_plain", "plain", VAL_VIDEOS))
    return out


def make(out_dir: str | Path, workers: int = 2, progress: bool = True) -> Path:
    """Make every set not made yet (a ``.done`` stamp marks a finished one); returns OUT_DIR."""
    from stream.datasets.features import make_feature_set
    from stream.datasets.real import make_real_set

    root = Path(out_dir)
    todo = parts()
    trained = [v for p in todo if p.folder.startswith("train/") for v in p.names]
    check_training_videos(trained, (*HELD_OUT_VIDEOS, *HELD_OUT_PHOTOS, *VAL_VIDEOS))
    for part in todo:
        folder = root / part.folder
        if (folder / ".done").is_file():
            continue
        if progress:
            print(f"recipe: {part.folder}", file=sys.stderr, flush=True)
        if part.kind == "synthetic":
            make_feature_set(
                folder,
                part.count,
                part.seconds,
                fps=part.fps,
                seed=part.seed,
                photos=list(part.names),
                workers=workers,
                progress=progress,
                crf=part.crf,
                synthetic={
                    **EXPRESSIONS,
                    "deformation": part.family,
                    "face_height_px": part.face_px,
                },
            )
        else:
            seeds = list(VAL_SEEDS if part.folder.startswith("validation") else REAL_SEEDS)
            seeds = list(part.seeds) or seeds
            make_real_set(
                folder,
                list(part.names),
                seeds=seeds,
                plain=part.kind == "plain",
                macro_fraction=MACRO_FRACTION,
                workers=workers,
                progress=progress,
                amplitude_px=REAL_AMPLITUDE_PX,
                keep_going=True,  # a corpus clip too short or without a face: one warning
            )
        (folder / ".done").write_text("complete\n")
    return root


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m stream.datasets.recipe",
        description="Make the shipped spotter's training and validation feature files "
        "(synthetic faces of two deformation families at 25-200 fps, micro-expressions "
        "injected into real video, real video with nothing injected); the cross-domain "
        "suite's videos, photos and deformation family are held out of all of it.",
        epilog="Then: python -m engines.train --features OUT_DIR/train ... (see "
        "engines/weights/manifest.json for the exact command). Exit code 2 means bad input.",
    )
    parser.add_argument("out_dir", metavar="OUT_DIR")
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    try:
        make(args.out_dir, args.workers, not args.quiet)
    except MexliveError as exc:
        return report_error(exc)
    print(f"made {args.out_dir} in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
