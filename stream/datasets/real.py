"""Feature data sets from REAL video: micro-expressions injected into real talking faces.

A spotter trained only on synthetic faces learns the synthetic generator: on real video it
misses the injected events and fires on talking. Here each (video, seed) is the whole real
video with expressions injected by ``stream.synthetic.injected.inject_video`` (the TPS warp on
the frame's own landmarks; frames outside the events are the decoded frames), passed through
H.264 (crf 16, as ``features.py`` does: the warped pixels get the same compression as their
neighbours), decoded back, aligned and featurized exactly as ``stream.datasets.features``
does. Everything real stays in: talking, blinks, head motion, lighting, the camera's noise.
Those are the negatives around the positives. ``--plain`` writes each video with nothing
injected (same H.264 round trip): every event a model finds there is false.

Per seed the injections vary: the gap between events is drawn from 1.8-4 s (no fixed grid; the
first onset from 1.3-2.8 s), amplitude 0.5-5 px at a 200 px face (scaled to the real face),
duration 0.2-0.5 s, a random emotion; with ``--macro-fraction`` that share of events is a
macro-expression (6-15 px, 0.6-2 s, kind "macro").

Files: ``OUT_DIR/<video-stem>_s<seed>.npz`` (``<stem>_plain.npz`` with ``--plain``) in the
``stream.datasets.features`` layout plus identity (the video's file name), seed (-1 when
plain), h264 and synthetic (JSON of the injection settings), so
``engines.train.data.load_clips`` reads them unchanged. fps and pts_s are the video's own.

Usage:
    python -m stream.datasets.real /tmp/data/real --videos st_rd2.mp4,vr_2.mp4 --seeds 0,1,2
    python -m stream.datasets.real /tmp/data/plain --videos st_rd34.mp4 --plain

Video names resolve against $MEXLIVE_FIXTURES/videos (else ../shared/fixtures/videos beside
the repository); a path that exists is used as is. Exit code 2 means bad input.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import multiprocessing
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stream.datasets.featurize import (
    featurize,
    init_worker,
    resolve_video,
    save_atomic,
    truth_arrays,
)
from stream.errors import MexliveError, report_error
from stream.synthetic.injected import InjectionConfig
from stream.synthetic.schedule import duration_frames

SPACING_S = (1.8, 4.0)  # gap between injected onsets
AMPLITUDE_PX = (0.5, 5.0)  # at a 200 px face
DURATION_S = (0.2, 0.5)
MACRO_PX, MACRO_S = (6.0, 15.0), (0.6, 2.0)
FIRST_ONSET_S = (1.3, 2.8)  # the flow window needs real frames before the first event


def injection_config(
    seed: int,
    macro_fraction: float = 0.0,
    amplitude_px: tuple[float, float] = AMPLITUDE_PX,
    onsets: tuple[int, ...] | None = None,
) -> InjectionConfig:
    """The injections of one seed (see the module docstring); ``amplitude_px`` at a 200 px
    face; ``onsets``: these onset frames instead of random gaps."""
    first = np.random.default_rng((seed, 7)).uniform(*FIRST_ONSET_S)
    return InjectionConfig(
        seed=seed,
        onsets=onsets,
        pre_s=round(float(first), 3) if onsets is None else FIRST_ONSET_S[0],
        spacing_range_s=SPACING_S,
        amplitude_px=amplitude_px,
        duration_s=DURATION_S,
        macro_fraction=macro_fraction,
        macro_amplitude_px=MACRO_PX,
        macro_duration_s=MACRO_S,
    )


@dataclass(frozen=True)
class _VideoJob:
    path: Path  # the .npz to write
    video: Path
    seed: int  # -1: plain
    config: InjectionConfig | None  # None: nothing injected
    max_seconds: float | None


def make_real_set(
    out_dir: str | Path,
    videos: list[str],
    seeds: list[int] | None = None,
    plain: bool = False,
    macro_fraction: float = 0.0,
    max_seconds: float | None = None,
    workers: int = 2,
    progress: bool = True,
    amplitude_px: tuple[float, float] = AMPLITUDE_PX,
    keep_going: bool = False,
    warn=None,
    onsets: dict[str, tuple[int, ...]] | None = None,
) -> list[Path]:
    """Inject, compress, align and featurize each (video, seed); returns the .npz paths.

    Args:
        videos: names (see ``resolve_video``) or paths; the file name is the identity.
        seeds: one file per video and seed; ignored with ``plain`` (one file per video).
        max_seconds: use only the start of each video (events must end inside it).
        workers: processes (``spawn``); 1 runs in this process.
        amplitude_px: micro amplitude range at a 200 px face.
        onsets: per video (as named in ``videos``), the onset frames to inject at instead of
            random gaps (each at least 1.3 s into the video); a video not listed is left out.
        keep_going: a video that cannot be used (missing, unreadable, too short, no face, no
            position to inject into) costs only its own files: ``warn`` gets one line for it
            (default: a ``warning:`` line on stderr) and the rest is made; the returned paths
            are the files written.

    Raises MexliveError for a missing, unreadable or too short video (checked before any
    work), and for a video without a face or with no position where one could be injected
    (unless ``keep_going``).
    """
    if not videos:
        raise MexliveError("no videos given")
    if max_seconds is not None and max_seconds <= 0:
        raise MexliveError(f"--max-seconds must be positive: {max_seconds}")
    seeds = [0] if seeds is None else seeds
    if any(s < 0 for s in seeds) or not seeds:
        raise MexliveError(f"seeds must be >= 0: {seeds}")
    warn = warn or (lambda line: print(f"warning: {line}", file=sys.stderr, flush=True))
    out = Path(out_dir)
    jobs: list[_VideoJob] = []
    for name in videos:
        if onsets is not None and name not in onsets:
            continue
        at = None if onsets is None else onsets[name]
        try:
            jobs += _video_jobs(
                name, out, seeds, plain, macro_fraction, max_seconds, amplitude_px, at
            )
        except MexliveError as exc:
            if not keep_going:
                raise
            warn(f"skipped: {exc}")
    if len({job.path for job in jobs}) != len(jobs):
        raise MexliveError("two videos share a file stem; rename one")
    if not jobs:
        return []
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    run = _run_job_or_error if keep_going else _run_job
    if workers <= 1:
        done = _report((run(job) for job in jobs), len(jobs), t0, progress, warn)
    else:
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(min(workers, len(jobs)), initializer=init_worker) as pool:
            done = _report(pool.imap_unordered(run, jobs), len(jobs), t0, progress, warn)
    written = set(done)
    return [job.path for job in jobs if job.path in written]


def _video_jobs(
    name: str,
    out: Path,
    seeds: list[int],
    plain: bool,
    macro_fraction: float,
    max_seconds: float | None,
    amplitude_px: tuple[float, float],
    onsets: tuple[int, ...] | None = None,
) -> list[_VideoJob]:
    """The jobs of one video, after the checks that need no work (exists, decodes, long
    enough)."""
    video = resolve_video(name)
    fps, frames = _probe(video, max_seconds)
    if plain:
        return [_VideoJob(out / f"{video.stem}_plain.npz", video, -1, None, max_seconds)]
    jobs = []
    for seed in seeds:
        config = injection_config(seed, macro_fraction, amplitude_px, onsets)
        _check_length(video, fps, frames, config)
        jobs.append(_VideoJob(out / f"{video.stem}_s{seed}.npz", video, seed, config, max_seconds))
    return jobs


def _probe(video: Path, max_seconds: float | None) -> tuple[float, int]:
    """(fps, frames to use; 0 when the file does not say) — opening it checks it decodes."""
    from stream.synthetic.decode import VideoReader

    with VideoReader(video) as reader:
        fps = reader.fps
        if not fps:
            raise MexliveError(f"{video}: the video does not say its frame rate")
        frames = reader.declared_frames
        if reader.read() is None:
            raise MexliveError(f"{video}: holds no frames")
    limit = _max_frames(fps, max_seconds)
    return fps, frames if limit is None or not frames else min(frames, limit)


def _max_frames(fps: float, max_seconds: float | None) -> int | None:
    return None if max_seconds is None else max(1, math.floor(max_seconds * fps + 1e-6))


def _needed_frames(fps: float, config: InjectionConfig) -> int:
    """Frames the first (shortest) event needs: before it, the event, after it."""
    lo, _ = duration_frames(config.duration_s, fps)
    return round(config.pre_s * fps) + lo + round(config.post_s * fps) + 1


def _check_length(video: Path, fps: float, frames: int, config: InjectionConfig) -> None:
    needed = _needed_frames(fps, config)
    if 0 < frames < needed:
        raise MexliveError(
            f"{video.name}: too short to inject into: {frames} frames ({frames / fps:.2f} s at "
            f"{fps:g} fps) used, an event needs at least {needed} frames ({needed / fps:.2f} s: "
            f"{config.pre_s:g} s before it, {config.duration_s[0]:g} s of event, "
            f"{config.post_s:g} s after it)"
        )


def _report(results, count: int, t0: float, progress: bool, warn) -> list[Path]:
    """Prints a line per finished job; returns the paths written (an error is a warning)."""
    written = []
    for k, result in enumerate(results, start=1):
        if isinstance(result, str):
            warn(f"skipped: {result}")
            continue
        path, identity, frames, valid, events, seconds = result
        written.append(path)
        if progress:
            print(
                f"clip {k}/{count} {path.name} ({identity}): {frames} frames, "
                f"{valid / max(frames, 1):.0%} valid, {events} events, {seconds:.1f} s "
                f"({frames / max(seconds, 1e-9):.1f} frames/s) "
                f"[{time.perf_counter() - t0:.0f} s elapsed]",
                file=sys.stderr,
                flush=True,
            )
    return written


def _run_job_or_error(job: _VideoJob) -> tuple | str:
    """``_run_job``, with a MexliveError turned into its message (one bad clip of many)."""
    try:
        return _run_job(job)
    except MexliveError as exc:
        return f"{job.path.name}: {exc}"


def _run_job(job: _VideoJob) -> tuple[Path, str, int, int, int, float]:
    from stream.face.flow import warm_up

    t0 = time.perf_counter()
    warm_up()
    with tempfile.TemporaryDirectory(prefix="mexlive_real_") as tmp:
        mp4 = Path(tmp) / "video.mp4"
        events, pts, fps = _reencode(job, mp4)
        arrays = featurize(_decoded(mp4, pts, fps), fps)
    n = len(pts)
    if len(arrays["seq"]) != n:
        raise MexliveError(f"{job.path.name}: decoded {len(arrays['seq'])} of {n} frames")
    if not arrays["valid"].any():
        raise MexliveError(f"{job.video}: no face found in {n} decoded frames")
    settings: dict = {"background": "real", "injected": job.config is not None}
    if job.config is not None:
        settings.update(dataclasses.asdict(job.config))
    settings["max_seconds"] = job.max_seconds
    arrays.update(truth_arrays(events))
    arrays.update(
        {
            "identity": np.array(job.video.name),
            "seed": np.int64(job.seed),
            "h264": np.bool_(True),
            "synthetic": np.array(json.dumps(settings, sort_keys=True)),
        }
    )
    save_atomic(job.path, arrays)
    valid = int(arrays["valid"].sum())
    return job.path, job.video.name, n, valid, len(events), time.perf_counter() - t0


def _reencode(job: _VideoJob, mp4: Path) -> tuple[list, list[float | None], float]:
    """Write the (injected) video to ``mp4``; returns (events, each frame's pts_s, fps)."""
    from stream.synthetic.decode import VideoReader
    from stream.synthetic.writers import H264Writer

    sinks: list[H264Writer] = []
    pts: list[float | None] = []

    def write(_i: int, pts_s: float | None, image: np.ndarray, fps: float) -> None:
        if not sinks:  # size and rate are known at the first frame
            sinks.append(H264Writer(mp4, image.shape[1], image.shape[0], fps))
        sinks[0].write(image)
        pts.append(pts_s)

    events: list = []
    try:
        if job.config is None:
            with VideoReader(job.video) as reader:
                fps = float(reader.fps or 0.0)
                limit = _max_frames(fps, job.max_seconds)
                while len(pts) != limit and (frame := reader.read()) is not None:
                    write(frame.index, frame.pts_s, frame.image, fps)
        else:
            events, fps = _inject(job, write)
    finally:
        for sink in sinks:
            sink.close()
    return events, pts, fps


def _inject(job: _VideoJob, write) -> tuple[list, float]:
    """``inject_video`` with the checks a person needs: too short, no event placed."""
    from stream.synthetic.decode import VideoReader
    from stream.synthetic.injected import inject_video

    with VideoReader(job.video) as reader:
        fps = float(reader.fps or 0.0)
    limit = _max_frames(fps, job.max_seconds)
    events, frames, fps = inject_video(job.video, job.config, write, limit)
    if not events:
        _check_length(job.video, fps, frames, job.config)
        raise MexliveError(
            f"{job.video.name}: no event could be injected in {frames} frames: the face is "
            "lost somewhere in every stretch an event would need"
        )
    return events, fps


def _decoded(mp4: Path, pts: list[float | None], fps: float) -> Iterator[tuple]:
    """(index, the source video's pts_s, BGR image) of the re-encoded video."""
    from stream.synthetic.decode import VideoReader

    with VideoReader(mp4) as source:
        while (frame := source.read()) is not None:
            i = frame.index
            yield i, pts[i] if i < len(pts) and pts[i] is not None else i / fps, frame.image


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m stream.datasets.real",
        description="Write a real-video feature set for the spotter: micro-expressions "
        "injected into real talking video with exact truth (one OUT_DIR/<stem>_s<seed>.npz "
        "per video and seed), or with --plain the videos with nothing injected "
        "(<stem>_plain.npz, every event there false); the stream.datasets.features layout.",
        epilog="Video names resolve against $MEXLIVE_FIXTURES/videos (else "
        "../shared/fixtures/videos); the identity is the video's file name: keep training "
        "and validation videos apart. Exit code 2 means bad input.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("out_dir", metavar="OUT_DIR", help="folder for the .npz files")
    parser.add_argument("--videos", required=True, help="comma-separated video names or paths")
    parser.add_argument("--seeds", default="0", help="comma-separated injection seeds")
    parser.add_argument("--plain", action="store_true", help="inject nothing (false-alarm set)")
    parser.add_argument(
        "--macro-fraction", type=float, default=0.0, help="share of events that are macro"
    )
    parser.add_argument("--max-seconds", type=float, help="use only the start of each video")
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    t0 = time.perf_counter()
    try:
        try:
            seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
        except ValueError:
            raise MexliveError(f"--seeds must be integers: {args.seeds!r}") from None
        paths = make_real_set(
            args.out_dir,
            [v.strip() for v in args.videos.split(",") if v.strip()],
            seeds=seeds,
            plain=args.plain,
            macro_fraction=args.macro_fraction,
            max_seconds=args.max_seconds,
            workers=args.workers,
            progress=not args.quiet,
        )
    except MexliveError as exc:
        return report_error(exc)
    print(f"wrote {len(paths)} files to {args.out_dir} in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
