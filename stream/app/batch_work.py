"""One batch job on whatever process runs it (a Ray worker, or this one): a video through the
same builder, stages and weights as ``mexlive --source VIDEO --headless``, its event log
written under a temporary name and renamed when complete. Nothing here imports Ray.

The temporary log is ``DIR/.<name>.<pid>.partial.jsonl``: a worker killed mid-video leaves
only that (the driver sweeps them), never a half-written file under a final name. A video
that cannot be read gives a "failed" result with its error, and the events it did give are
kept as ``DIR/<name>.failed.jsonl`` (no event already written is lost; a rerun retries it).
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path

from engines.eval.eventlog import read_whole_lines
from stream.app.batch_inputs import VideoJob, VideoResult, write_record
from stream.app.config import RunConfig
from stream.app.flags import build_parser
from stream.errors import MexliveError

NO_ROTATION_MB = "1000000"  # one log per video, whatever its length
# A worker is one CPU: alignment stays in its process (where it runs changes no event) and
# the decoder runs on one thread (frame threads only add hand-offs when every core is busy).
WORKER_FLAGS = ("--align", "inline", "--decode-threads", "1")
PARTIAL_GLOB = ".*.partial*"


def partial_log(job: VideoJob) -> Path:
    return Path(job.out_dir) / f".{job.name}.{os.getpid()}.partial.jsonl"


def single_run(video: str, log: Path) -> None:
    """``mexlive --source VIDEO --headless --events LOG``: the very code path of the CLI
    (its console lines go to this process's stdout, which Ray does not forward), with
    ``WORKER_FLAGS``."""
    from stream.app.run import run_one

    flags = ["--source", video, "--headless", "--events", str(log), *WORKER_FLAGS]
    args = build_parser().parse_args([*flags, "--events-max-mb", NO_ROTATION_MB])
    run_one(RunConfig.from_args(args))


def read_log(log: Path) -> dict:
    """From an event log: micro / macro counts, the declared fps, the ``stopped`` line. A torn
    last line (a run killed mid-line) or a line that is not JSON is skipped with a warning, as
    every log reader does."""
    read = {"micro": 0, "macro": 0, "fps": None, "stopped": None}
    for number, line in read_whole_lines(log, warn=_warn):
        try:
            event = json.loads(line)
        except ValueError as exc:  # a whole line that is not JSON: said, not fatal
            _warn(f"{log}:{number}: skipped a line that is not JSON: {exc}")
            continue
        if event.get("type") == "expression" and event.get("kind") in ("micro", "macro"):
            read[event["kind"]] += 1
        elif event.get("status") == "started":
            read["fps"] = event.get("fps")
        elif event.get("status") == "stopped":
            read["stopped"] = event
    return read


def _warn(message: str) -> None:
    print(f"mexlive batch: warning: {message}", file=sys.stderr, flush=True)


def analyse_video(job: VideoJob) -> VideoResult:
    """Run ``job``; its outputs are complete under their final names when this returns
    "done". Bad input is a "failed" result, never an exception; a crash of the process is the
    caller's to retry."""
    started = time.monotonic()
    result = VideoResult(
        video=job.video,
        name=job.name,
        status="failed",
        host=socket.gethostname(),
        pid=os.getpid(),
        weights=f"{job.weights['spotter']}/{job.weights['recognizer']}",
    )
    partial = partial_log(job)
    stopped = None
    try:
        result.video_bytes = Path(job.video).stat().st_size
        single_run(job.video, partial)
    except (MexliveError, OSError) as exc:
        result.error = " ".join(str(exc).split())
    if partial.is_file():
        read = read_log(partial)
        result.micro, result.macro, stopped = read["micro"], read["macro"], read["stopped"]
        if stopped is not None:
            result.frames = stopped["processed"]
            result.error = result.error or stopped.get("error") or ""
            result.warning = stopped.get("warning") or ""
            result.seconds = round(result.frames / (read["fps"] or 30.0), 3)
        result.log_bytes = partial.stat().st_size
    result.elapsed_s = round(time.monotonic() - started, 2)
    if stopped is not None and not result.error:
        result.status = "done"
        os.replace(partial, job.log_path)
        write_record(job, result)  # last: a record under its final name means a complete log
    elif partial.is_file():
        os.replace(partial, Path(job.out_dir) / f"{job.name}.failed.jsonl")
    return result


def sweep_partials(out_dir: Path) -> int:
    """Remove what killed or interrupted workers left under temporary names."""
    removed = 0
    for path in out_dir.glob(PARTIAL_GLOB):
        path.unlink(missing_ok=True)
        removed += 1
    return removed
