"""``mexlive batch``: every micro-expression in an archive of videos, on Ray.

    mexlive batch interviews/ --out results/                 # a local Ray runtime, all cores
    mexlive batch 'sessions/**/*.mp4' --out results/ --workers 2
    mexlive batch /data/archive --out /data/results --address auto   # join a running cluster

A video is the unit of work (the spotter's state runs through the whole video): each runs the
same builder, stages and weights as ``mexlive --source VIDEO --headless --align inline`` on one
worker (one CPU: alignment stays in the worker's process; the events are those of the default
``--align process`` too) and gives ``OUT/<name>.jsonl`` (me-events/v1, line for line what that
single run writes, apart from wall-clock fields) and ``OUT/<name>.done.json`` (its record).
``OUT/summary.csv`` (and ``summary.parquet`` when pyarrow is there) has a row per video.
Where a ground-truth CSV sits beside a video (``clip.csv`` for ``clip.mp4``, or in
``--truth-dir``) the MEGC table of those videos is printed and written to ``OUT/megc.md``.

A rerun with the same ``--out`` skips the videos whose complete output is there for the same
video size and weights (``--force`` redoes all). A video that cannot be read is a row with its
error; a worker that dies costs only its video, which Ray runs again on another worker
(``--retries``); Ctrl-C leaves every finished output and no half-written file under a final
name. Exit code: 0, or 2 for bad input and when every video failed.
"""

from __future__ import annotations

import argparse
import csv
import io
import logging
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from stream.app.batch_inputs import VideoJob, VideoResult, completed, make_jobs, write_atomically
from stream.app.batch_work import analyse_video, sweep_partials
from stream.errors import BadInputError, MexliveError, report_error
from stream.parsing import Parser

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130
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
        help="videos analysed at once on the local runtime (default: the core count)",
    )
    parser.add_argument(
        "--retries", type=int, default=2, help="runs more of a video whose worker died"
    )
    parser.add_argument("--force", action="store_true", help="redo videos already done")
    parser.add_argument("--truth-dir", default=None, help="ground-truth CSVs by video stem")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def start_ray(address: str | None, workers: int):
    """Ray, imported here only (the live analyzer never imports it), joined or started."""
    try:
        import ray
    except ImportError:
        raise BadInputError(
            "mexlive batch needs Ray: pip install 'mexlive[batch]' (or: pip install ray)"
        ) from None
    quiet = {"logging_level": logging.ERROR, "log_to_driver": False}
    if address is not None:
        try:
            ray.init(address=address, **quiet)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise BadInputError(f"cannot join the Ray cluster at {address}: {exc}") from None
    else:
        # A small object store: results are a few hundred bytes, frames never travel.
        ray.init(
            num_cpus=workers,
            include_dashboard=False,
            object_store_memory=128 * 1024 * 1024,
            **quiet,
        )
    return ray


class Interrupted:
    """A SIGINT handler that only raises a flag, checked between waits: a KeyboardInterrupt
    raised inside ``ray.wait`` can be lost there (seen: Ctrl-C ignored, exit 0)."""

    def __init__(self) -> None:
        self.hit = False

    def __call__(self, signum, frame) -> None:
        self.hit = True


def run_on_ray(
    ray, jobs: list[VideoJob], retries: int, progress: bool, stop: Interrupted | None = None
) -> list[VideoResult]:
    """Each job as a Ray task on one CPU; results as they come, a bar of videos and frames/s.
    Raises KeyboardInterrupt once ``stop`` has been hit."""
    from tqdm import tqdm

    task = ray.remote(analyse_video).options(num_cpus=1, max_retries=retries)
    pending = {task.remote(job): job for job in jobs}
    results: list[VideoResult] = []
    frames, started = 0, time.monotonic()
    with tqdm(total=len(jobs), unit="video", disable=not progress, file=sys.stderr) as bar:
        while pending:
            if stop is not None and stop.hit:
                raise KeyboardInterrupt
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
            for ref in ready:
                job = pending.pop(ref)
                results.append(collect(ray, ref, job, retries))
                frames += results[-1].frames
                rate = frames / max(time.monotonic() - started, 1e-9)
                bar.set_postfix_str(f"{rate:.0f} frames/s, {job.name} {results[-1].status}")
                bar.update(1)
    return results


def collect(ray, ref, job: VideoJob, retries: int) -> VideoResult:
    """The task's result, or a failed row when its worker died more times than retried."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return VideoResult(
            video=job.video,
            name=job.name,
            status="failed",
            error=f"worker lost {retries + 1} times: {type(exc).__name__}: {reason}"[:500],
        )


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


def batch(args: argparse.Namespace) -> int:
    out_dir = Path(args.out)
    if args.workers < 1:
        raise BadInputError(f"--workers {args.workers}: must be 1 or more")
    if args.retries < 0:
        raise BadInputError(f"--retries {args.retries}: must be 0 or more")
    truth_dir = Path(args.truth_dir) if args.truth_dir else None
    jobs = make_jobs(args.inputs, out_dir, truth_dir)  # before --out exists: bad input leaves none
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BadInputError(f"--out {out_dir}: {exc.strerror or exc}") from None
    sweep_partials(out_dir)  # what an interrupted run left under temporary names
    earlier = {} if args.force else {j.name: r for j in jobs if (r := completed(j)) is not None}
    todo = [job for job in jobs if job.name not in earlier]
    print(
        f"mexlive batch: {len(jobs)} videos, {len(earlier)} already done, {len(todo)} to run "
        f"→ {out_dir}",
        file=sys.stderr,
    )
    results = list(earlier.values())
    interrupted = False
    if todo:
        ray = start_ray(args.address, args.workers)
        stop = Interrupted()
        previous = signal.signal(signal.SIGINT, stop)
        try:
            results += run_on_ray(ray, todo, args.retries, not args.no_progress, stop)
        except KeyboardInterrupt:
            interrupted = True
        finally:
            signal.signal(signal.SIGINT, previous or signal.default_int_handler)
            ray.shutdown()
            sweep_partials(out_dir)
    return finish(out_dir, jobs, results, interrupted)


def finish(out_dir: Path, jobs: list[VideoJob], results: list[VideoResult], interrupted) -> int:
    summary = write_summary(out_dir, results)
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
