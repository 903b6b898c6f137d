"""Feature data sets for training and evaluating the spotter: synthetic clips → .npz files.

Each clip is rendered by ``stream.synthetic.animator.FaceAnimator`` (clip i: seed
``seed * 1000 + i``, photo ``photos[i % len(photos)]``), optionally passed through real
H.264 compression (written with ``H264Writer``, decoded back with ``VideoReader``,
which decodes as the product's file source does), then aligned and turned into feature
rows frame by frame exactly as the live pipeline does (``t_s = index / fps``).
``clip_XXXX.npz`` uses the ``--dump-features`` layout (``FaceAnalysis.save_features``:
values, valid, seq, t_mono_ns, pts_s, names, fps, truth_onset/apex/offset/kind/emotion)
plus ``identity`` (the photo's name), ``seed`` (the clip's animator seed), ``h264``, ``crf``,
``deformation`` (the warp family) and ``synthetic`` (JSON of SyntheticConfig overrides,
usually {}). The truth keeps blinks
(kind "blink"): they are not spotting targets, but a reader may want to see what the
model must ignore. Like ``--dump-features``, it holds every event whose onset lies
inside the clip.

Usage:
    python -m stream.datasets.features /tmp/data/train --count 40 --seconds 30 --seed 0 \\
        --photos astronaut,lp_d9.jpg,lp_d30.jpg,st_rd2.mp4@1.5 --deformation mesh
    # a held-out family for cross-family validation:
    python -m stream.datasets.features /tmp/data/val --count 10 --seed 1 --deformation kernel

Identities (``stream/datasets/identities.py``): photo names resolve against the fixtures'
photos folder ($MEXLIVE_FIXTURES/photos, else ../shared/fixtures/photos beside the
repository); ``astronaut`` is scikit-image's astronaut; ``VIDEO@SECONDS`` is the frame at that
time of a fixtures video (or a video path), extracted to a PNG outside the repository.
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
from stream.datasets.featurize import init_worker, save_atomic, truth_arrays
from stream.datasets.identities import (
    ASTRONAUT,
    check_face,
    fixtures_photos_dir,
    resolve_identity,
    resolve_photo,
)
from stream.errors import MexliveError, report_error
from stream.synthetic.schedule import DEFORMATIONS, SyntheticConfig

__all__ = [
    "ASTRONAUT",
    "build_parser",
    "fixtures_photos_dir",
    "main",
    "make_feature_set",
    "resolve_photo",
]

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
    "deformation",
    "micro_px",
    "asymmetry",
    "profile_jitter",
}
DEFAULT_CRF = 16  # H264Writer's: keeps the sub-pixel motion of a micro-expression


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
    crf: int = DEFAULT_CRF


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
    crf: int = DEFAULT_CRF,
) -> list[Path]:
    """Render, (compress,) align and featurize ``count`` clips; returns the .npz paths in order.

    Args:
        out_dir: created if missing; clips are ``clip_0000.npz``, ``clip_0001.npz``, ...
        count, seconds, fps: clips and their length.
        seed: data seed K; clip i uses animator seed ``K * 1000 + i``.
        photos: identity names, cycled over clips; None = astronaut. A photo name, or
            ``VIDEO@SECONDS`` for a frame of a real video (``identities.resolve_identity``).
        h264: pass the frames through H.264 as a camera file would be.
        workers: processes (``spawn``); 1 runs in this process.
        progress: print ``clip k/N`` lines on stderr.
        synthetic: other ``SyntheticConfig`` fields for every clip (e.g. ``lead_in_s``,
            ``micro_per_min``, ``deformation``, ``micro_px``, ``asymmetry``); stored in each
            file as JSON under ``synthetic``.
        crf: x264 quality of the H.264 round trip (lower: closer to the rendered frames).

    Example:
        >>> make_feature_set("/tmp/d", 2, 3.0, photos=["astronaut"], h264=False)  # doctest: +SKIP
    """
    if count < 1 or seconds <= 0 or fps <= 0:
        raise MexliveError("count, seconds and fps must be positive")
    if not 0 <= crf <= 51:
        raise MexliveError(f"crf must be 0..51 (x264): {crf}")
    names = list(photos) if photos else [ASTRONAUT]
    overrides = dict(synthetic or {})
    unknown = set(overrides) - _OVERRIDABLE
    if unknown:
        raise MexliveError(f"unknown synthetic setting(s) {sorted(unknown)}")
    SyntheticConfig(fps=fps, **overrides)  # a bad setting fails here, not in a worker
    # Fail before any work: every identity resolves and shows a face.
    resolved = {name: resolve_identity(name) for name in dict.fromkeys(names)}
    for name, photo in resolved.items():
        check_face(name, photo)
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
            crf,
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
        frames = _frames(animator, n_frames, job.h264, Path(tmp) / "clip.mp4", job.crf)
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
            "crf": np.int64(job.crf),
            "deformation": np.array(config.deformation),
            "synthetic": np.array(json.dumps(dict(job.synthetic), sort_keys=True)),
        }
    )
    save_atomic(job.path, arrays)
    valid = int(arrays["valid"].sum())
    return job.path, job.identity, n_frames, valid, time.perf_counter() - t0


def _frames(animator, n_frames: int, h264: bool, mp4: Path, crf: int = DEFAULT_CRF):
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
    with H264Writer(mp4, cfg.width, cfg.height, fps, crf=crf) as sink:
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
        help="comma-separated identities, cycled over the clips: photo names, 'astronaut', "
        "or VIDEO@SECONDS for the frame at that time of a fixtures video (st_rd2.mp4@1.5)",
    )
    parser.add_argument(
        "--no-h264", action="store_true", help="skip the H.264 round trip (raw rendered frames)"
    )
    parser.add_argument("--crf", type=int, default=DEFAULT_CRF, help="x264 quality (0..51)")
    scene = parser.add_argument_group(
        "synthetic scene (SyntheticConfig; unset: its defaults, which render today's TPS clips)"
    )
    scene.add_argument(
        "--deformation",
        choices=DEFORMATIONS,
        help="warp family: tps (thin-plate spline), mesh (piecewise affine), kernel (Gaussian "
        "RBF); train on some, validate on another",
    )
    scene.add_argument("--micro-px", metavar="LO,HI", help="micro-expression peak range, px")
    scene.add_argument(
        "--asymmetry", type=float, help="per expression, one half moves by [1-A, 1] of the other"
    )
    scene.add_argument(
        "--profile-jitter",
        type=float,
        help="J: rise and fall of each expression raised to powers in [e^-J, e^J]",
    )
    scene.add_argument("--face-height", type=float, help="face box height, px")
    scene.add_argument("--width", type=int, help="frame width, px")
    scene.add_argument("--height", type=int, help="frame height, px")
    scene.add_argument("--noise-sigma", type=float, help="sensor noise, grey levels")
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    return parser


def _scene_overrides(args: argparse.Namespace) -> dict:
    """The SyntheticConfig fields set on the command line (unset ones keep their defaults)."""
    fields = {
        "deformation": args.deformation,
        "asymmetry": args.asymmetry,
        "profile_jitter": args.profile_jitter,
        "face_height_px": args.face_height,
        "width": args.width,
        "height": args.height,
        "noise_sigma": args.noise_sigma,
    }
    if args.micro_px is not None:
        try:
            lo, hi = (float(v) for v in args.micro_px.split(","))
        except ValueError:
            raise MexliveError(f"--micro-px wants LO,HI (e.g. 0.5,3): {args.micro_px!r}") from None
        fields["micro_px"] = (lo, hi)
    return {k: v for k, v in fields.items() if v is not None}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    photos = [p.strip() for p in args.photos.split(",") if p.strip()]
    t0 = time.perf_counter()
    try:
        synthetic = _scene_overrides(args)
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
            synthetic=synthetic,
            crf=args.crf,
        )
    except MexliveError as exc:
        return report_error(exc)
    print(f"wrote {len(paths)} clips to {args.out_dir} in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
