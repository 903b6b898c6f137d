"""Feature data sets for training and evaluating the spotter: synthetic clips → .npz files.

Each clip is rendered by ``stream.synthetic.animator.FaceAnimator`` (clip i: seed
``seed * 1000 + i``, photo ``photos[i % len(photos)]``), optionally passed through real
H.264 compression (written with ``H264Writer``, decoded back with ``VideoReader``,
which decodes as the product's file source does), then aligned and turned into feature
rows frame by frame exactly as the live pipeline does (``t_s = index / fps``).
``clip_XXXX.npz`` uses the ``--dump-features`` layout (``FaceAnalysis.save_features``:
values, valid, seq, t_mono_ns, pts_s, names, fps, truth_onset/apex/offset/kind/emotion)
plus ``identity`` (the photo's name), ``seed`` (the clip's animator seed), ``h264`` and
``synthetic`` (JSON of SyntheticConfig overrides, usually {}). The truth keeps blinks
(kind "blink"): they are not spotting targets, but a reader may want to see what the
model must ignore. Like ``--dump-features``, it holds every event whose onset lies
inside the clip.

Usage:
    python -m stream.datasets.features /tmp/data/train --count 40 --seconds 30 --seed 0 \\
        --photos astronaut,lp_d9.jpg,lp_d30.jpg,lp_s1.jpg,tpsmm_source.png

Photo names resolve against the fixtures' photos folder ($MEXLIVE_FIXTURES/photos, else
../shared/fixtures/photos beside the repository); ``astronaut`` is scikit-image's astronaut.
Same arguments → identical arrays (the animator and the x264 settings are deterministic).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stream.datasets.featurize import featurize as _featurize  # the old name, kept
from stream.datasets.featurize import fixtures_dir, init_worker, save_atomic, truth_arrays
from stream.errors import MexliveError, report_error

ASTRONAUT = "astronaut"
# SyntheticConfig fields a caller may override; seed, photo and fps are the set's own.
_OVERRIDABLE = {
    "width",
    "height",
    "face_height_px",
    "micro_per_min",
    "macro_per_min",
    "blinks_per_min",
    "head_motion",
    "noise_sigma",
    "light_drift",
    "lead_in_s",
}


def fixtures_photos_dir() -> Path:
    """$MEXLIVE_FIXTURES/photos, else ../shared/fixtures/photos beside the repository."""
    return fixtures_dir() / "photos"


def resolve_photo(name: str) -> str | None:
    """A photo name → the path FaceAnimator wants (None for ``astronaut``).

    A bare name is looked up in the fixtures' photos folder; a path that exists is used as is.
    Raises MexliveError when it is neither.
    """
    if name == ASTRONAUT:
        return None
    if Path(name).is_file():
        return str(Path(name).resolve())
    folder = fixtures_photos_dir()
    path = folder / name
    if path.is_file():
        return str(path)
    known = sorted(p.name for p in folder.glob("*")) if folder.is_dir() else []
    hint = f" (known: {ASTRONAUT}, {', '.join(known)})" if known else f" ({folder} is missing)"
    raise MexliveError(f"photo {name!r} not found in {folder}{hint}")


@dataclass(frozen=True)
class _ClipJob:
    index: int
    path: Path
    seconds: float
    fps: float
    seed: int  # the animator's seed
    identity: str  # the photo's name as given
    photo: str | None  # resolved path, None for the astronaut
    h264: bool
    synthetic: tuple[tuple[str, object], ...] = ()


def make_feature_set(
    out_dir: str | Path,
    count: int,
    seconds: float,
    fps: float = 30.0,
    seed: int = 0,
    photos: list[str] | None = None,
    h264: bool = True,
    workers: int = 2,
    progress: bool = True,
    synthetic: dict | None = None,
) -> list[Path]:
    """Render, (compress,) align and featurize ``count`` clips; returns the .npz paths in order.

    Args:
        out_dir: created if missing; clips are ``clip_0000.npz``, ``clip_0001.npz``, ...
        count, seconds, fps: clips and their length.
        seed: data seed K; clip i uses animator seed ``K * 1000 + i``.
        photos: photo names (see ``resolve_photo``), cycled over clips; None = astronaut.
        h264: pass the frames through H.264 (crf 16) as a camera file would be.
        workers: processes (``spawn``); 1 runs in this process.
        progress: print ``clip k/N`` lines on stderr.
        synthetic: other ``SyntheticConfig`` fields for every clip (e.g. ``lead_in_s``,
            ``micro_per_min``); stored in each file as JSON under ``synthetic``.

    Example:
        >>> make_feature_set("/tmp/d", 2, 3.0, photos=["astronaut"], h264=False)  # doctest: +SKIP
    """
    if count < 1 or seconds <= 0 or fps <= 0:
        raise MexliveError("count, seconds and fps must be positive")
    names = list(photos) if photos else [ASTRONAUT]
    resolved = {name: resolve_photo(name) for name in names}  # fail before any work
    overrides = dict(synthetic or {})
    unknown = set(overrides) - _OVERRIDABLE
    if unknown:
        raise MexliveError(f"unknown synthetic setting(s) {sorted(unknown)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    jobs = [
        _ClipJob(
            i,
            out / f"clip_{i:04d}.npz",
            seconds,
            fps,
            seed * 1000 + i,
            names[i % len(names)],
            resolved[names[i % len(names)]],
            h264,
            tuple(sorted(overrides.items())),
        )
        for i in range(count)
    ]
    t0 = time.perf_counter()
    if workers <= 1:
        results = (_run_job(job) for job in jobs)
        _report(results, count, t0, progress)
    else:
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(min(workers, count), initializer=init_worker) as pool:
            _report(pool.imap_unordered(_run_job, jobs), count, t0, progress)
    return [job.path for job in jobs]


def _report(results, count: int, t0: float, progress: bool) -> None:
    for k, (path, identity, frames, valid, seconds) in enumerate(results, start=1):
        if progress:
            print(
                f"clip {k}/{count} {path.name} ({identity}): {frames} frames, "
                f"{valid / max(frames, 1):.0%} valid, {seconds:.1f} s "
                f"[{time.perf_counter() - t0:.0f} s elapsed]",
                file=sys.stderr,
                flush=True,
            )


def _run_job(job: _ClipJob) -> tuple[Path, str, int, int, float]:
    from stream.face.flow import warm_up
    from stream.synthetic.animator import FaceAnimator, SyntheticConfig

    t0 = time.perf_counter()
    warm_up()
    config = SyntheticConfig(seed=job.seed, photo=job.photo, fps=job.fps, **dict(job.synthetic))
    animator = FaceAnimator(config)
    n_frames = round(job.seconds * job.fps)
    with tempfile.TemporaryDirectory(prefix="mexlive_clip_") as tmp:
        frames = _frames(animator, n_frames, job.h264, Path(tmp) / "clip.mp4")
        arrays = _featurize(frames, job.fps)
    if len(arrays["seq"]) != n_frames:
        raise MexliveError(f"{job.path.name}: decoded {len(arrays['seq'])} of {n_frames} frames")
    truth = animator.events_between(0, n_frames)
    arrays.update(truth_arrays(truth))
    arrays.update(
        {
            "identity": np.array(job.identity),
            "seed": np.int64(job.seed),
            "h264": np.bool_(job.h264),
            "synthetic": np.array(json.dumps(dict(job.synthetic), sort_keys=True)),
        }
    )
    save_atomic(job.path, arrays)
    valid = int(arrays["valid"].sum())
    return job.path, job.identity, n_frames, valid, time.perf_counter() - t0


def _frames(animator, n_frames: int, h264: bool, mp4: Path):
    """(index, pts_s, BGR image) of the clip, through H.264 when asked."""
    fps = animator.config.fps
    if not h264:
        for i in range(n_frames):
            yield i, i / fps, animator.render(i)
        return
    from stream.synthetic.decode import VideoReader
    from stream.synthetic.writers import H264Writer

    cfg = animator.config
    buffer = np.empty((cfg.height, cfg.width, 3), np.uint8)  # (H, W, 3) reused
    with H264Writer(mp4, cfg.width, cfg.height, fps) as sink:
        for i in range(n_frames):
            sink.write(animator.render(i, buffer))
    with VideoReader(mp4) as source:
        while (frame := source.read()) is not None:
            pts = frame.pts_s if frame.pts_s is not None else frame.index / fps
            yield frame.index, pts, frame.image


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m stream.datasets.features",
        description="Write a synthetic feature set for the spotter: COUNT clips of SECONDS "
        "each, rendered from real face photos with exact ground truth, (H.264-compressed,) "
        "aligned and featurized like the live pipeline, one clip_XXXX.npz per clip "
        "(the --dump-features layout plus identity and seed).",
        epilog="Clip i uses animator seed SEED*1000+i and photo i % len(PHOTOS). Photo names "
        "resolve against $MEXLIVE_FIXTURES/photos (else ../shared/fixtures/photos); "
        "'astronaut' is scikit-image's astronaut. Keep training and test sets apart by seed "
        "AND identity. Exit code 2 means bad input.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("out_dir", metavar="OUT_DIR", help="folder for the .npz files")
    parser.add_argument("--count", type=int, default=10, help="number of clips")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each clip, s")
    parser.add_argument("--fps", type=float, default=30.0, help="frame rate")
    parser.add_argument("--seed", type=int, default=0, help="data seed K (clip seeds K*1000+i)")
    parser.add_argument(
        "--photos",
        default=ASTRONAUT,
        help="comma-separated photo names (identities), cycled over the clips",
    )
    parser.add_argument(
        "--no-h264", action="store_true", help="skip the H.264 round trip (raw rendered frames)"
    )
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    photos = [p.strip() for p in args.photos.split(",") if p.strip()]
    t0 = time.perf_counter()
    try:
        paths = make_feature_set(
            args.out_dir,
            args.count,
            args.seconds,
            fps=args.fps,
            seed=args.seed,
            photos=photos,
            h264=not args.no_h264,
            workers=args.workers,
            progress=not args.quiet,
        )
    except MexliveError as exc:
        return report_error(exc)
    print(f"wrote {len(paths)} clips to {args.out_dir} in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
