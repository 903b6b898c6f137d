"""A long video in chunks: each chunk is a Ray task over its own stretch of the file, and the
chunks' events merge into the video's log as one run over the whole file would write it.

A chunk owns the frames ``[start, end)``. It analyses ``[warm, stop)``: a warm-up of
``warmup_s`` before its start, so everything with memory in the chain (the tracker and its
landmark smoothing, the flow history, the node noise estimate, the context detectors, the
spotter's state and its 2-s calibration) has seen what a single run has seen, and a tail of
``TAIL_S`` after its end, so an expression whose apex it owns is decided (the decoder decides
a look-ahead after the offset) before the stretch ends. It keeps an expression when it owns
its apex, a blink when it owns its onset, a status line when it owns its frame; the first
chunk keeps ``started``, and the merged log ends with one ``stopped`` line for the whole video.

A chunk's output is ``OUT/<name>.chunks/NNNN.jsonl`` and its record ``NNNN.done.json``, both
renamed into place when complete: a rerun runs only the chunks without a current record, and
the merge removes the folder once the video's log and record are in place. Nothing here
imports Ray.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import socket
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from stream.app.batch_inputs import VideoJob, VideoResult, write_atomically, write_record
from stream.app.batch_work import WORKER_FLAGS
from stream.app.config import RunConfig
from stream.app.flags import build_parser
from stream.capture.stretch import StretchSource, VideoScan
from stream.errors import MexliveError

CHUNK_FORMAT = "mexlive-batch-chunk/v1"
TAIL_S = 10.0  # longer than any expression the decoder holds open, plus its look-ahead
DEFAULT_CHUNK_S = 300.0
DEFAULT_WARMUP_S = 60.0


@dataclass(frozen=True)
class ChunkJob:
    """One stretch of one video: analyse ``[warm, stop)``, keep what ``[start, end)`` owns."""

    video: VideoJob
    index: int
    count: int
    warm: int
    start: int
    end: int
    stop: int
    frames: int  # the video's, as the scan counted them
    warm_pts_s: float | None  # where the seek goes; None: decode from the start
    plan: str  # "chunk_s/warmup_s/tail_s": a record of another plan is not reused

    @property
    def folder(self) -> Path:
        return Path(self.video.out_dir) / f"{self.video.name}.chunks"

    @property
    def log_path(self) -> Path:
        return self.folder / f"{self.index:04d}.jsonl"

    @property
    def record_path(self) -> Path:
        return self.folder / f"{self.index:04d}.done.json"

    def partial_log(self) -> Path:
        name = f".{self.video.name}.{os.getpid()}.chunk{self.index:04d}.partial.jsonl"
        return Path(self.video.out_dir) / name


@dataclass
class ChunkResult:
    """What one chunk gave (its record when done)."""

    index: int
    status: str  # "done" | "skipped" | "failed"
    frames: int = 0  # owned frames read
    analysed: int = 0  # frames read, warm-up and tail included
    error: str = ""
    elapsed_s: float = 0.0
    host: str = ""
    pid: int = 0
    fell_back: bool = False  # the container could not seek: decoded from the start
    cut: int = 0  # kept expressions still open when the stretch ended (TAIL_S too short)


def plan_chunks(
    job: VideoJob, scan: VideoScan, chunk_s: float, warmup_s: float, tail_s: float = TAIL_S
) -> list[ChunkJob]:
    """The chunks of a video longer than one chunk; [] for a video run whole."""
    size = max(1, round(chunk_s * scan.fps))
    if scan.frames <= size:
        return []
    warmup, tail = round(warmup_s * scan.fps), round(tail_s * scan.fps)
    count = math.ceil(scan.frames / size)
    plan = f"{chunk_s:g}/{warmup_s:g}/{tail_s:g}"
    chunks = []
    for index in range(count):
        start, end = index * size, min(scan.frames, (index + 1) * size)
        warm = max(0, start - warmup)
        pts = scan.pts_s[warm] if scan.pts_s is not None else None
        stop = min(scan.frames, end + tail)
        chunks.append(ChunkJob(job, index, count, warm, start, end, stop, scan.frames, pts, plan))
    return chunks


def owner_frame(line: dict) -> int | None:
    """The frame that decides which chunk keeps a log line (None: no frame)."""
    if line.get("type") == "expression":
        return line["apex_frame"]
    if line.get("type") == "blink":
        return line["onset_frame"]
    return line.get("seq")


def keep(chunk: ChunkJob, line: dict) -> bool:
    if line.get("status") == "started":
        return chunk.index == 0
    if line.get("status") == "stopped":
        return False  # the merge writes one for the whole video
    frame = owner_frame(line)
    return frame is not None and chunk.start <= frame < chunk.end


def stretch_run(chunk: ChunkJob, log: Path) -> StretchSource:
    """``mexlive --source VIDEO --headless --align inline`` over the chunk's stretch."""
    from stream.app.run import run_one

    video = chunk.video.video
    flags = ["--source", video, "--headless", "--events", str(log), *WORKER_FLAGS]
    args = build_parser().parse_args([*flags, "--events-max-mb", "1000000"])
    config = RunConfig.from_args(args)
    threads = config.live.open.decode_threads  # WORKER_FLAGS' one decoder thread
    source = StretchSource(video, chunk.warm, chunk.stop, chunk.warm_pts_s, threads)
    run_one(replace(config, live=replace(config.live, source=source)))
    return source


def analyse_chunk(chunk: ChunkJob) -> ChunkResult:
    """Run one chunk; its kept lines and record are in place when this returns "done"."""
    started = time.monotonic()
    result = ChunkResult(chunk.index, "failed", host=socket.gethostname(), pid=os.getpid())
    partial = chunk.partial_log()
    try:
        source = stretch_run(chunk, partial)
        result.fell_back = source.fell_back
        lines = [json.loads(text) for text in partial.read_text().splitlines()]
    except (MexliveError, OSError, ValueError) as exc:
        result.error = " ".join(str(exc).split())
        partial.unlink(missing_ok=True)
        return result
    partial.unlink(missing_ok=True)
    stopped = next((x for x in lines if x.get("status") == "stopped"), None)
    # captured, not processed: a repeated (frozen) frame is read and deliberately not analysed
    result.analysed = stopped["captured"] if stopped else 0
    if stopped is None or stopped.get("error") or result.analysed != chunk.stop - chunk.warm:
        result.error = (stopped or {}).get("error") or (
            f"chunk {chunk.index}: {result.analysed} of {chunk.stop - chunk.warm} frames read"
        )
        return result
    kept = [line for line in lines if keep(chunk, line)]
    last = chunk.stop - 1
    result.cut = sum(
        x.get("type") == "expression" and x["seq"] >= last and chunk.stop < chunk.frames
        for x in kept
    )
    result.frames = chunk.end - chunk.start
    result.status = "done"
    result.elapsed_s = round(time.monotonic() - started, 2)
    chunk.folder.mkdir(exist_ok=True)
    write_atomically(chunk.log_path, "".join(json.dumps(x) + "\n" for x in kept))
    record = {"format": CHUNK_FORMAT, **asdict(result), **chunk_identity(chunk)}
    write_atomically(chunk.record_path, json.dumps(record, indent=1) + "\n")  # last
    return result


def chunk_identity(chunk: ChunkJob) -> dict:
    """What a chunk's record must match to be reused by a rerun."""
    return {
        "video_bytes": Path(chunk.video.video).stat().st_size,
        "weights": chunk.video.weights,
        "plan": chunk.plan,
        "count": chunk.count,
        "range": [chunk.warm, chunk.start, chunk.end, chunk.stop],
    }


def completed_chunk(chunk: ChunkJob) -> ChunkResult | None:
    """The earlier result of a chunk whose output is complete and current, else None."""
    try:
        record = json.loads(chunk.record_path.read_text())
        current = (
            record.get("format") == CHUNK_FORMAT
            and record["status"] == "done"
            and chunk.log_path.is_file()
            and all(record[k] == v for k, v in chunk_identity(chunk).items())
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not current:
        return None
    fields = ChunkResult.__dataclass_fields__
    return ChunkResult(**{**{k: record[k] for k in fields}, "status": "skipped"})


def merge_chunks(job: VideoJob, chunks: list[ChunkJob], results: list[ChunkResult]) -> VideoResult:
    """The video's log from its chunks' kept lines, in order, ending with one ``stopped``
    line; its record last; the chunks' folder removed. Every chunk must be done."""
    by_index = {r.index: r for r in results}
    lines: list[dict] = []
    for chunk in chunks:
        lines += [json.loads(t) for t in chunk.log_path.read_text().splitlines()]
    frames = sum(by_index[c.index].frames for c in chunks)
    analysed = sum(by_index[c.index].analysed for c in chunks)
    lines.append(stopped_line(job.name, frames, analysed, len(chunks)))
    text = "".join(json.dumps(x, separators=(",", ":")) + "\n" for x in lines)
    write_atomically(job.log_path, text)
    expressions = [x for x in lines if x.get("type") == "expression"]
    fps = next((x.get("fps") for x in lines if x.get("status") == "started"), None) or 30.0
    hosts = sorted({by_index[c.index].host for c in chunks})
    result = VideoResult(
        video=job.video,
        name=job.name,
        status="done",
        frames=frames,
        seconds=round(frames / fps, 3),
        micro=sum(x["kind"] == "micro" for x in expressions),
        macro=sum(x["kind"] == "macro" for x in expressions),
        elapsed_s=round(sum(by_index[c.index].elapsed_s for c in chunks), 2),
        host=",".join(hosts),
        pid=by_index[chunks[-1].index].pid,
        video_bytes=Path(job.video).stat().st_size,
        log_bytes=job.log_path.stat().st_size,
        weights=f"{job.weights['spotter']}/{job.weights['recognizer']}",
    )
    write_record(job, result)  # last: a record under its final name means a complete log
    shutil.rmtree(chunks[0].folder, ignore_errors=True)
    return result


def stopped_line(video_name: str, frames: int, analysed: int, chunks: int) -> dict:
    """The whole video's ``stopped`` line: every frame once (warm-ups and tails aside). Its
    ``processed`` is the frames read: a repeated (frozen) frame a chunk dropped is not
    subtracted, since a chunk counts drops over its warm-up and tail too."""
    return {
        "schema": "me-events/v1",
        "type": "status",
        "status": "stopped",
        "seq": frames - 1,
        "t_wall": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "stream": "cam0",
        "captured": frames,
        "processed": frames,
        "dropped": {},
        "balanced": True,
        "chunks": chunks,
        "analysed_with_warmups": analysed,
        "video": video_name,
    }
