"""Flow-stack data sets for the recognizer: synthetic expressions → onset→apex stacks (.npz).

Clip i of a set is ``FaceAnimator(seed = K*1000 + i, photo = photos[i % len(photos)])`` with
more expressions per minute than the demo (``--micro-per-min``, ``--macro-per-min``), so that
few rendered seconds give many intervals. Only the frames around each micro-/macro-expression
are rendered (the animator is random access): from ``warm_s`` before its onset, so a fresh
``FaceTracker`` has settled, to a little past its apex; optionally through H.264 as a camera
file would be (``--h264``; off by default: x264 costs ~1 s per segment); aligned exactly as the
live pipeline aligns (``stream.face.align``). Blinks are not targets and are skipped.

Each expression gives ``variants`` stacks (``stream.face.flow_stack``): the true (onset, apex)
first, then (onset, apex) each moved by up to ``jitter`` frames, because the live decoder's
interval is not the truth and the recognizer must not depend on it being exact.

``clip_XXXX.npz`` holds, for its N stacks: ``flow`` (N, 2, T, S, S) float16 (aligned-face px),
``mask`` (N, S, S) float16 (the ROI prior), ``emotion`` / ``kind`` (N,) str, ``aus`` (N, A)
bool over ``au_names`` (A,), ``onset`` / ``apex`` (N,) the frames used, ``truth_onset`` /
``truth_apex``, ``event`` (N,) the expression's index in the clip, ``variant`` (N,) (0 = the
true interval); and ``identity``, ``seed``, ``h264``, ``stack`` (JSON of StackConfig),
``skipped`` (stacks not built: face not tracked on a frame they need).

Usage:
    python -m stream.datasets.stacks /tmp/rec/train --count 48 --seconds 30 --seed 3 \\
        --photos astronaut,lp_d9.jpg,lp_d30.jpg,lp_s1.jpg
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from stream.datasets.features import ASTRONAUT, resolve_photo
from stream.datasets.featurize import init_worker
from stream.errors import BadInputError, MexliveError, report_error
from stream.face.flow_stack import StackConfig, flow_stack, step_frames
from stream.synthetic.au import EMOTIONS as AU_COMBOS

AU_NAMES = tuple(sorted({au for combos in AU_COMBOS.values() for combo in combos for au in combo}))


@dataclass(frozen=True)
class RecognizerDataConfig:
    seconds: float = 30.0
    fps: float = 30.0
    micro_per_min: float = 24.0
    macro_per_min: float = 6.0
    variants: int = 3  # stacks per expression: the truth + (variants - 1) jittered
    jitter: int = 3  # frames
    warm_s: float = 0.5  # tracking before the earliest frame a stack needs
    h264: bool = False  # the live synthetic source is raw; x264 per segment costs ~1 s
    stack: StackConfig = field(default_factory=StackConfig)


@dataclass(frozen=True)
class _Job:
    index: int
    path: Path
    seed: int
    identity: str
    photo: str | None
    config: RecognizerDataConfig


def make_recognizer_set(
    out_dir: str | Path,
    count: int,
    seed: int = 0,
    photos: list[str] | None = None,
    config: RecognizerDataConfig | None = None,
    workers: int = 2,
    progress: bool = True,
) -> list[Path]:
    """Write ``count`` clip files of flow stacks; returns their paths in order."""
    config = config or RecognizerDataConfig()
    if count < 1 or config.seconds <= 0 or config.variants < 1 or config.jitter < 0:
        raise MexliveError("count, seconds and variants must be positive, jitter >= 0")
    names = list(photos) if photos else [ASTRONAUT]
    resolved = {name: resolve_photo(name) for name in names}  # fail before any work
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    jobs = [
        _Job(
            i,
            out / f"clip_{i:04d}.npz",
            seed * 1000 + i,
            names[i % len(names)],
            resolved[names[i % len(names)]],
            config,
        )
        for i in range(count)
    ]
    t0 = time.perf_counter()
    if workers <= 1:
        results = map(_run_job, jobs)
        _report(results, count, t0, progress)
    else:
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(min(workers, count), initializer=init_worker) as pool:
            _report(pool.imap_unordered(_run_job, jobs), count, t0, progress)
    return [job.path for job in jobs]


def _report(results, count: int, t0: float, progress: bool) -> None:
    from tqdm import tqdm

    for path, identity, stacks, skipped in tqdm(
        results, total=count, desc="clips", unit="clip", disable=not progress, file=sys.stderr
    ):
        if progress and skipped:
            tqdm.write(
                f"{path.name} ({identity}): {stacks} stacks, {skipped} skipped", file=sys.stderr
            )


def _run_job(job: _Job) -> tuple[Path, str, int, int]:
    from stream.face.flow import warm_up
    from stream.synthetic.animator import FaceAnimator, SyntheticConfig

    warm_up()
    cfg = job.config
    animator = FaceAnimator(
        SyntheticConfig(
            seed=job.seed,
            photo=job.photo,
            fps=cfg.fps,
            micro_per_min=cfg.micro_per_min,
            macro_per_min=cfg.macro_per_min,
        )
    )
    n_frames = round(cfg.seconds * cfg.fps)
    events = [e for e in animator.events_between(0, n_frames) if e.kind in ("micro", "macro")]
    rng = np.random.default_rng((job.seed, 0x5AC))
    rows: list[dict] = []
    skipped = 0
    with tempfile.TemporaryDirectory(prefix="mexlive_rec_") as tmp:
        for k, event in enumerate(events):
            faces = _aligned_segment(animator, event, cfg, n_frames, Path(tmp) / f"e{k}.mp4")
            for variant, (onset, apex) in enumerate(_intervals(event, cfg, rng)):
                row = _stack_row(faces, onset, apex, cfg.stack)
                if row is None:
                    skipped += 1
                    continue
                aus = np.array([au in event.aus for au in AU_NAMES], bool)
                rows.append(
                    {
                        **row,
                        "emotion": event.emotion,
                        "kind": event.kind,
                        "aus": aus,
                        "truth_onset": event.onset,
                        "truth_apex": event.apex,
                        "event": k,
                        "variant": variant,
                    }
                )
    _write(job, rows, skipped)
    return job.path, job.identity, len(rows), skipped


def _intervals(event, cfg: RecognizerDataConfig, rng: np.random.Generator) -> list[tuple[int, int]]:
    """The true (onset, apex), then jittered ones (apex kept after onset)."""
    out = [(event.onset, event.apex)]
    while len(out) < cfg.variants:
        onset = event.onset + int(rng.integers(-cfg.jitter, cfg.jitter + 1))
        apex = event.apex + int(rng.integers(-cfg.jitter, cfg.jitter + 1))
        if apex > onset:
            out.append((onset, apex))
    return out


def _aligned_segment(animator, event, cfg: RecognizerDataConfig, n_frames: int, mp4: Path):
    """{frame: (face uint8 (F, F), landmarks (68, 2))} for the tracked frames around ``event``."""
    from stream.face.align import FaceTracker, TrackerConfig

    warm = round(cfg.warm_s * cfg.fps)
    start = max(0, event.onset - cfg.jitter - warm)
    stop = min(n_frames, event.apex + cfg.jitter + 1)
    tracker = FaceTracker(TrackerConfig(face_size=cfg.stack.face_size))
    faces = {}
    for index, image in _segment_frames(animator, start, stop, cfg, mp4):
        t_s = index / cfg.fps
        aligned = tracker.update(image, index, round(t_s * 1e9), t_s)
        if aligned.redetected:
            faces.clear()  # a re-acquired track is a new alignment: no flow across it
        if aligned.ok:
            faces[index] = (aligned.face.copy(), aligned.landmarks.copy())
    return faces


def _segment_frames(animator, start: int, stop: int, cfg: RecognizerDataConfig, mp4: Path):
    """(index, BGR image) of frames [start, stop), through H.264 when asked."""
    if not cfg.h264:
        for i in range(start, stop):
            yield i, animator.render(i)
        return
    from stream.synthetic.decode import VideoReader
    from stream.synthetic.writers import H264Writer

    c = animator.config
    with H264Writer(mp4, c.width, c.height, cfg.fps) as sink:
        for i in range(start, stop):
            sink.write(animator.render(i))
    with VideoReader(mp4) as source:
        while (frame := source.read()) is not None:
            yield start + frame.index, frame.image


def _stack_row(faces: dict, onset: int, apex: int, config: StackConfig) -> dict | None:
    ends = step_frames(onset, apex, config.steps)
    if any(f not in faces for f in (onset, *ends)):
        return None
    stack = flow_stack([faces[f][0] for f in (onset, *ends)], faces[onset][1], config, ends)
    return {"flow": stack.flow, "mask": stack.mask, "onset": onset, "apex": apex}


def _write(job: _Job, rows: list[dict], skipped: int) -> None:
    s = job.config.stack
    empty = {
        "flow": np.zeros((0, 2, s.steps, s.size, s.size)),
        "mask": np.zeros((0, s.size, s.size)),
    }
    arrays = {
        "flow": np.stack([r["flow"] for r in rows]) if rows else empty["flow"],
        "mask": np.stack([r["mask"] for r in rows]) if rows else empty["mask"],
        "aus": np.stack([r["aus"] for r in rows]) if rows else np.zeros((0, len(AU_NAMES)), bool),
    }
    arrays = {k: v.astype(np.float16) if k != "aus" else v for k, v in arrays.items()}
    for key in ("onset", "apex", "truth_onset", "truth_apex", "event", "variant"):
        arrays[key] = np.array([r[key] for r in rows], np.int64)
    for key in ("emotion", "kind"):
        arrays[key] = np.array([r[key] for r in rows], dtype="<U8")
    arrays.update(
        {
            "au_names": np.array(AU_NAMES, np.int64),
            "identity": np.array(job.identity),
            "seed": np.int64(job.seed),
            "h264": np.bool_(job.config.h264),
            "fps": np.float64(job.config.fps),
            "stack": np.array(json.dumps(dataclasses.asdict(s), sort_keys=True)),
            "skipped": np.int64(skipped),
        }
    )
    partial = job.path.with_suffix(".npz.part")
    with open(partial, "wb") as f:
        np.savez_compressed(f, **arrays)
    partial.replace(job.path)  # never a half-written clip under the final name


def build_parser() -> argparse.ArgumentParser:
    d = RecognizerDataConfig()
    parser = argparse.ArgumentParser(
        prog="python -m stream.datasets.stacks",
        description="Write onset→apex flow stacks of synthetic micro- and macro-expressions "
        "(aligned like the live pipeline) for training the recognizer: one clip_XXXX.npz per "
        "clip.",
        epilog="Clip i uses animator seed SEED*1000+i and photo i %% len(PHOTOS). Keep training, "
        "validation and test sets apart by seed AND identity. Exit code 2 means bad input.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("out_dir", metavar="OUT_DIR", help="folder for the .npz files")
    parser.add_argument("--count", type=int, default=10, help="number of clips")
    parser.add_argument("--seconds", type=float, default=d.seconds, help="length of each clip")
    parser.add_argument("--fps", type=float, default=d.fps)
    parser.add_argument("--seed", type=int, default=0, help="data seed K (clip seeds K*1000+i)")
    parser.add_argument("--photos", default=ASTRONAUT, help="comma-separated photo names")
    parser.add_argument("--micro-per-min", type=float, default=d.micro_per_min)
    parser.add_argument("--macro-per-min", type=float, default=d.macro_per_min)
    parser.add_argument("--variants", type=int, default=d.variants, help="stacks per expression")
    parser.add_argument("--jitter", type=int, default=d.jitter, help="onset/apex jitter, frames")
    parser.add_argument("--steps", type=int, default=d.stack.steps, help="flow fields per stack")
    parser.add_argument("--size", type=int, default=d.stack.size, help="side of each field")
    parser.add_argument("--h264", action="store_true", help="pass the frames through H.264")
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    photos = [p.strip() for p in args.photos.split(",") if p.strip()]
    t0 = time.perf_counter()
    try:
        stack = StackConfig(steps=args.steps, size=args.size)
    except ValueError as exc:  # the stack's own shape check
        return report_error(BadInputError(f"--steps {args.steps} / --size {args.size}: {exc}"))
    try:
        config = RecognizerDataConfig(
            seconds=args.seconds,
            fps=args.fps,
            micro_per_min=args.micro_per_min,
            macro_per_min=args.macro_per_min,
            variants=args.variants,
            jitter=args.jitter,
            h264=args.h264,
            stack=stack,
        )
        paths = make_recognizer_set(
            args.out_dir, args.count, args.seed, photos, config, args.workers, not args.quiet
        )
    except MexliveError as exc:
        return report_error(exc)
    print(f"wrote {len(paths)} clips to {args.out_dir} in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
