"""The Ray side of ``mexlive batch``: joining or starting Ray, and running whole videos and
chunks of long videos as tasks, merging each long video when its last chunk is in.

Ray is imported here only (the live analyzer never imports it). Each task takes one CPU and
is retried by Ray when its worker or its node dies (``max_retries``); a chunk is the cost of a
lost worker on a long video, not the video.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from stream.app.batch_chunks import ChunkJob, ChunkResult, analyse_chunk, merge_chunks
from stream.app.batch_inputs import VideoJob, VideoResult
from stream.app.batch_work import analyse_video
from stream.errors import BadInputError


def start_ray(address: str | None, workers: int):
    """Ray joined (``address``) or started here with ``workers`` CPUs."""
    try:
        import ray
    except ImportError:
        raise BadInputError(
            "mexlive batch needs Ray: pip install 'mexlive[batch]' (or: pip install ray)"
        ) from None
    quiet = {"logging_level": logging.ERROR, "log_to_driver": False}
    # Ray starts its workers at nice 15, where any other busy process on the machine starves
    # them (seen: a chunk at 4 % of a core beside two `yes`); the analysis is the work the user
    # asked for, so a runtime started here runs it at normal priority unless told otherwise.
    os.environ.setdefault("RAY_worker_niceness", "0")
    if address is not None:
        check_reachable(address)
        try:
            ray.init(address=address, **quiet)
        except (ConnectionError, RuntimeError, ValueError, TimeoutError) as exc:
            reason = " ".join(str(exc).split())[:200]
            raise BadInputError(f"cannot join the Ray cluster at {address}: {reason}") from None
    else:
        # A small object store: results are a few hundred bytes, frames never travel.
        # "local": a runtime of our own even where RAY_ADDRESS names a cluster.
        ray.init(
            address="local",
            num_cpus=workers,
            include_dashboard=False,
            object_store_memory=128 * 1024 * 1024,
            **quiet,
        )
    return ray


def check_reachable(address: str, timeout_s: float = 3.0) -> None:
    """A HOST:PORT that answers nothing is said at once (Ray itself waits and retries for a
    minute and then prints a traceback)."""
    if address == "auto" or address.startswith("ray://"):
        return
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise BadInputError(f"--address {address!r}: expected 'auto' or HOST:PORT")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise BadInputError(f"cannot join the Ray cluster at {address}: {reason}") from None


class Interrupted:
    """A SIGINT handler that only raises a flag, checked between waits: a KeyboardInterrupt
    raised inside ``ray.wait`` can be lost there (seen: Ctrl-C ignored, exit 0)."""

    def __init__(self) -> None:
        self.hit = False

    def __call__(self, signum, frame) -> None:
        self.hit = True


@dataclass
class LongVideo:
    """A chunked video on its way: its chunks and the results that are in."""

    job: VideoJob
    chunks: list[ChunkJob]
    results: dict[int, ChunkResult] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return len(self.results) == len(self.chunks)

    def finish(self, say: Callable[[str], None]) -> VideoResult:
        """Merged when every chunk is done; else a failed row naming the first failure."""
        results = [self.results[c.index] for c in self.chunks]
        if any(r.fell_back for r in results):
            say(f"{self.job.name}: the container cannot seek; its chunks decoded from the start")
        cut = sum(r.cut for r in results)
        if cut:
            say(f"{self.job.name}: {cut} events still open at a chunk's end (raise TAIL_S)")
        failed = [r for r in results if r.status == "failed"]
        if not failed:
            return merge_chunks(self.job, self.chunks, results)
        return VideoResult(
            video=self.job.video,
            name=self.job.name,
            status="failed",
            error=f"{len(failed)} of {len(results)} chunks failed: {failed[0].error}"[:500],
        )


def run_on_ray(
    ray,
    whole: list[VideoJob],
    long: list[LongVideo],
    retries: int,
    progress: bool,
    stop: Interrupted | None = None,
) -> list[VideoResult]:
    """Whole videos and the missing chunks of long ones as Ray tasks on one CPU each; results
    as they come, a bar of videos and frames/s. Raises KeyboardInterrupt once ``stop`` has
    been hit."""
    from tqdm import tqdm

    def say(line: str) -> None:
        print(f"mexlive batch: {line}", file=sys.stderr)

    video_task = ray.remote(analyse_video).options(num_cpus=1, max_retries=retries)
    chunk_task = ray.remote(analyse_chunk).options(num_cpus=1, max_retries=retries)
    pending: dict = {video_task.remote(job): job for job in whole}
    for video in long:
        for chunk in video.chunks:
            if chunk.index not in video.results:
                pending[chunk_task.remote(chunk)] = (video, chunk)
    results: list[VideoResult] = []
    frames, started = 0, time.monotonic()
    total = len(whole) + len(long)
    with tqdm(total=total, unit="video", disable=not progress, file=sys.stderr) as bar:
        for video in [v for v in long if v.complete]:  # every chunk from an earlier run
            results.append(video.finish(say))
            bar.update(1)
        while pending:
            if stop is not None and stop.hit:
                raise KeyboardInterrupt
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
            for ref in ready:
                owner = pending.pop(ref)
                if isinstance(owner, VideoJob):
                    finished = collect(ray, ref, owner, retries)
                else:
                    video, chunk = owner
                    video.results[chunk.index] = collect_chunk(ray, ref, chunk, retries)
                    frames += video.results[chunk.index].frames
                    finished = video.finish(say) if video.complete else None
                if finished is None:
                    continue
                results.append(finished)
                frames += finished.frames if isinstance(owner, VideoJob) else 0
                rate = frames / max(time.monotonic() - started, 1e-9)
                bar.set_postfix_str(f"{rate:.0f} frames/s, {finished.name} {finished.status}")
                bar.update(1)
    return results


def lost(exc: Exception, retries: int) -> str:
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"worker lost {retries + 1} times: {type(exc).__name__}: {reason}"[:500]


def collect(ray, ref, job: VideoJob, retries: int) -> VideoResult:
    """The task's result, or a failed row when its worker died more times than retried."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayError as exc:
        return VideoResult(job.video, job.name, "failed", error=lost(exc, retries))


def collect_chunk(ray, ref, chunk: ChunkJob, retries: int) -> ChunkResult:
    try:
        return ray.get(ref)
    except ray.exceptions.RayError as exc:
        return ChunkResult(chunk.index, "failed", error=lost(exc, retries))
