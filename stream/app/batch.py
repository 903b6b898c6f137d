"""``mexlive batch``: every micro-expression in an archive of videos, on Ray.

    mexlive batch interviews/ --out results/                 # a local Ray runtime, all cores
    mexlive batch 'sessions/**/*.mp4' --out results/ --workers 2
    mexlive batch /data/archive --out /data/results --address auto   # join a running cluster
    mexlive batch long.mp4 --out results/ --chunk-s 180 --warmup-s 45   # one video, many tasks

A video up to ``--chunk-s`` long is the unit of work (the spotter's state runs through it):
each runs the same builder, stages and weights as ``mexlive --source VIDEO --headless --align
inline`` on one worker (one CPU: alignment stays in the worker's process; the events are those
of the default ``--align process`` too) and gives ``OUT/<name>.jsonl`` (me-events/v1, line for
line what that single run writes, apart from wall-clock fields) and ``OUT/<name>.done.json``
(its record). A longer video runs as chunks, separate tasks that each seek to a warm-up of
``--warmup-s`` before their stretch and keep the events whose apex they own
(``stream/app/batch_chunks.py``); a rerun redoes only missing chunks.

``OUT/summary.csv`` (and ``summary.parquet`` when pyarrow is there) has a row per video, and
``OUT/events.parquet`` every expression of the archive (``stream/app/batch_table.py``). Where a
ground-truth CSV sits beside a video (``clip.csv`` for ``clip.mp4``, or in ``--truth-dir``) the
MEGC table of those videos is printed and written to ``OUT/megc.md``.

A rerun with the same ``--out`` skips the videos whose complete output is there for the same
video size and weights (``--force`` redoes all). A video that cannot be read is a row with its
error; a worker that dies costs only its video or chunk, which Ray runs again on another worker
(``--retries``); Ctrl-C leaves every finished output and no half-written file under a final
name. Exit code: 0, or 2 for bad input and when every video failed.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from stream.app.batch_chunks import (
    DEFAULT_CHUNK_S,
    DEFAULT_WARMUP_S,
    completed_chunk,
    plan_chunks,
)
from stream.app.batch_inputs import VideoJob, VideoResult, completed, make_jobs, write_atomically
from stream.app.batch_ray import Interrupted, LongVideo, run_on_ray, start_ray
from stream.app.batch_table import archive_rows, write_events_table
from stream.app.batch_work import sweep_partials
from stream.capture.stretch import scan_video
from stream.errors import BadInputError, MexliveError, SourceError, report_error
from stream.parsing import Parser

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130
MIN_WARMUP_S = 3.0  # the spotter's 2-s calibration and an expression's onset before it
SUMMARY_COLUMNS = (
    "video", "name", "status", "frames", "seconds", "micro", "macro", "error", "warning",
    "elapsed_s", "host", "pid", "video_bytes", "log_bytes", "weights",
)  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="mexlive batch",
        description="Every micro-expression in an archive of videos, on Ray.",
        epilog="examples:\n" + __doc__.split("\n\n", 1)[1].replace("``", ""),
    )
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="videos, folders or globs")
    parser.add_argument("--out", required=True, metavar="DIR", help="where the outputs go")
    parser.add_argument(
        "--address",
        default=None,
        help="a Ray cluster to join: 'auto' (the one `ray start` runs here) or HOST:PORT; "
        "without it a local Ray runtime starts with --workers CPUs",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="tasks (videos or chunks) at once on the local runtime (default: the core count)",
    )
    parser.add_argument(
        "--retries", type=int, default=2, help="runs more of a video or chunk whose worker died"
    )
    parser.add_argument(
        "--chunk-s",
        type=float,
        default=DEFAULT_CHUNK_S,
        help="a video longer than this many seconds is split into chunks run as separate "
        f"tasks (default {DEFAULT_CHUNK_S:g})",
    )
    parser.add_argument(
        "--warmup-s",
        type=float,
        default=DEFAULT_WARMUP_S,
        help="seconds each chunk analyses before its start, so its tracker, noise estimate and "
        "spotter state have a single run's history: from 42 s on its events are a single "
        "run's, shorter gives close ones (docs/benchmarks.md) (default "
        f"{DEFAULT_WARMUP_S:g}, at least {MIN_WARMUP_S:g}, below --chunk-s)",
    )
    parser.add_argument("--force", action="store_true", help="redo videos already done")
    parser.add_argument("--truth-dir", default=None, help="ground-truth CSVs by video stem")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def write_summary(out_dir: Path, results: list[VideoResult]) -> Path:
    text = io.StringIO()
    writer = csv.DictWriter(text, SUMMARY_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for result in sorted(results, key=lambda r: r.name):
        writer.writerow(result.row())
    path = out_dir / "summary.csv"
    write_atomically(path, text.getvalue())
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        return path
    table = pa.Table.from_pylist([{k: r.row()[k] for k in SUMMARY_COLUMNS} for r in results])
    temporary = out_dir / f".summary.parquet.{os.getpid()}.partial"
    pq.write_table(table, temporary)
    os.replace(temporary, out_dir / "summary.parquet")
    return path


def megc_table(jobs: list[VideoJob], results: list[VideoResult]) -> str | None:
    """The MEGC spotting table of the analysed videos that have ground truth, or None."""
    from engines.eval.evaluate import Video, markdown_table, read_pred, read_truth, score

    analysed = {r.name for r in results if r.status in ("done", "skipped")}
    videos = [
        Video(job.name, read_pred(job.log_path), read_truth(Path(job.truth)))
        for job in jobs
        if job.truth is not None and job.name in analysed
    ]
    if not videos:
        return None
    return f"MEGC table, {len(videos)} videos with ground truth:\n\n{markdown_table(score(videos))}"


def check_numbers(args: argparse.Namespace) -> None:
    if args.workers < 1:
        raise BadInputError(f"--workers {args.workers}: must be 1 or more")
    if args.retries < 0:
        raise BadInputError(f"--retries {args.retries}: must be 0 or more")
    if args.warmup_s < MIN_WARMUP_S:
        raise BadInputError(
            f"--warmup-s {args.warmup_s:g} is too short: the spotter calibrates on the first "
            f"2 s of face, so a chunk needs at least {MIN_WARMUP_S:g} s of warm-up"
        )
    if args.chunk_s <= args.warmup_s:
        raise BadInputError(
            f"--chunk-s {args.chunk_s:g} must be longer than the warm-up (--warmup-s "
            f"{args.warmup_s:g}): each chunk analyses its warm-up again"
        )


def split_long(
    todo: list[VideoJob], chunk_s: float, warmup_s: float, force: bool
) -> tuple[list[VideoJob], list[LongVideo]]:
    """Videos run whole, and long videos in chunks with the chunks an earlier run finished."""
    whole, long = [], []
    for job in todo:
        try:
            scan = scan_video(job.video)
        except SourceError:
            whole.append(job)  # its task says what is wrong with it, as a row
            continue
        chunks = plan_chunks(job, scan, chunk_s, warmup_s)
        if not chunks:
            whole.append(job)
            continue
        video = LongVideo(job, chunks)
        if not force:
            video.results = {c.index: r for c in chunks if (r := completed_chunk(c)) is not None}
        long.append(video)
    return whole, long


def batch(args: argparse.Namespace) -> int:
    check_numbers(args)
    out_dir = Path(args.out)
    truth_dir = Path(args.truth_dir) if args.truth_dir else None
    jobs = make_jobs(args.inputs, out_dir, truth_dir)
    if out_dir.is_dir():
        sweep_partials(out_dir)  # what an interrupted run left under temporary names
    earlier = {} if args.force else {j.name: r for j in jobs if (r := completed(j)) is not None}
    todo = [job for job in jobs if job.name not in earlier]
    whole, long = split_long(todo, args.chunk_s, args.warmup_s, args.force)
    chunks = sum(len(v.chunks) for v in long)
    chunks_done = sum(len(v.results) for v in long)
    # Ray before the folder: an unreachable cluster leaves no empty output folder behind.
    ray = start_ray(args.address, args.workers) if todo else None
    print(
        f"mexlive batch: {len(jobs)} videos, {len(earlier)} already done, {len(todo)} to run "
        f"({len(long)} in {chunks} chunks of {args.chunk_s:g} s, {chunks_done} chunks already "
        f"done) → {out_dir}",
        file=sys.stderr,
    )
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        if ray is not None:
            ray.shutdown()
        raise BadInputError(f"--out {out_dir}: {exc.strerror or exc}") from None
    results = list(earlier.values())
    interrupted = False
    if ray is not None:
        stop = Interrupted()
        previous = signal.signal(signal.SIGINT, stop)
        try:
            results += run_on_ray(ray, whole, long, args.retries, not args.no_progress, stop)
        except KeyboardInterrupt:
            interrupted = True
        finally:
            signal.signal(signal.SIGINT, previous or signal.default_int_handler)
            ray.shutdown()
            sweep_partials(out_dir)
    return finish(out_dir, jobs, results, interrupted)


def finish(out_dir: Path, jobs: list[VideoJob], results: list[VideoResult], interrupted) -> int:
    summary = write_summary(out_dir, results)
    events_table = write_events_table(out_dir, archive_rows(jobs, results))
    if events_table is None:
        print("mexlive batch: pyarrow is not installed: no events.parquet", file=sys.stderr)
    failed = [r for r in results if r.status == "failed"]
    for result in failed:
        print(f"mexlive batch: failed: {result.video}: {result.error}", file=sys.stderr)
    for result in results:
        if result.warning and result.status != "failed":
            print(f"mexlive batch: warning: {result.warning}", file=sys.stderr)
    table = megc_table(jobs, results)
    if table is not None:
        print(table)
        write_atomically(out_dir / "megc.md", table + "\n")
    frames = sum(r.frames for r in results)
    events = sum(r.micro + r.macro for r in results)
    print(
        f"mexlive batch: {len(results) - len(failed)} of {len(jobs)} videos analysed "
        f"({len(failed)} failed), {frames} frames, {events} events; summary {summary}"
    )
    if interrupted:
        print("mexlive batch: interrupted; rerun the same command to finish", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_BAD_INPUT if results and len(failed) == len(results) else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return batch(args)
    except MexliveError as exc:
        return report_error(exc, "mexlive batch")
