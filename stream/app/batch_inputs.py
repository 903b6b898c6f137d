"""What ``mexlive batch`` is asked to do: the videos behind its inputs, one job each, and which
jobs a rerun may skip.

A job's output is ``DIR/<name>.jsonl`` (the event log, exactly what ``mexlive --source VIDEO
--headless --events ...`` writes) and ``DIR/<name>.done.json`` (its record: the video's size,
the weights' sha256, the log's size, the counts). Both are written under a temporary name and
renamed when complete, the record last, so a record under its final name means a complete log.
A rerun skips a job whose record matches the video (size), the weights (sha256) and its log
(size); anything else is redone.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from engines.weights import (
    DEFAULT_RECOGNIZER,
    DEFAULT_WEIGHTS,
    MANIFEST_NAME,
    RECOGNIZER_MANIFEST,
    read_manifest,
)
from stream.errors import BadInputError

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
RECORD_FORMAT = "mexlive-batch/v1"


@dataclass(frozen=True)
class VideoJob:
    """One video, the unit of work: the spotter's state runs through the whole of it."""

    video: str  # absolute path
    name: str  # the output stem: DIR/<name>.jsonl, unique in the batch
    out_dir: str
    truth: str | None  # the ground-truth CSV beside it (or under --truth-dir), if any
    weights: dict[str, str]  # {"spotter": sha256, "recognizer": sha256} the run will use

    @property
    def log_path(self) -> Path:
        return Path(self.out_dir) / f"{self.name}.jsonl"

    @property
    def record_path(self) -> Path:
        return Path(self.out_dir) / f"{self.name}.done.json"


@dataclass
class VideoResult:
    """What one job gave: a row of summary.csv (and the ``.done.json`` record when done)."""

    video: str
    name: str
    status: str  # "done" | "skipped" (complete from an earlier run) | "failed"
    frames: int = 0
    seconds: float = 0.0  # the video's length analysed (frames / its fps)
    micro: int = 0
    macro: int = 0
    error: str = ""
    warning: str = ""  # complete, but worth a look (a file cut shorter than its header says)
    elapsed_s: float = 0.0
    host: str = ""
    pid: int = 0
    video_bytes: int = 0
    log_bytes: int = 0
    weights: str = ""  # "spotter-sha256/recognizer-sha256"

    def row(self) -> dict[str, object]:
        return asdict(self)


def shipped_weights() -> dict[str, str]:
    """The sha256 of the weights a run will load (from their manifests; nothing is loaded)."""
    spotter = read_manifest(DEFAULT_WEIGHTS.parent / MANIFEST_NAME)["sha256"]
    recognizer = ""  # the recognizer is optional: without its weights events carry none
    if DEFAULT_RECOGNIZER.is_file():
        recognizer = read_manifest(DEFAULT_RECOGNIZER.parent / RECOGNIZER_MANIFEST)["sha256"]
    return {"spotter": spotter, "recognizer": recognizer}


def find_videos(inputs: list[str]) -> list[Path]:
    """Video files, folders (searched recursively) and glob patterns → the videos, in order,
    each once. A named file is taken whatever its suffix; an input that matches nothing is
    bad input."""
    found: list[Path] = []
    for spec in inputs:
        path = Path(spec).expanduser()
        if path.is_dir():
            matches = sorted(p for p in path.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES)
        elif path.is_file():
            matches = [path]
        elif glob.has_magic(spec):
            matches = sorted(
                Path(p) for p in glob.glob(os.path.expanduser(spec), recursive=True)
                if Path(p).is_file() and Path(p).suffix.lower() in VIDEO_SUFFIXES
            )  # fmt: skip
        else:
            raise BadInputError(f"batch input {spec!r}: no such file, folder or pattern")
        if not matches:
            raise BadInputError(f"batch input {spec!r}: no video files in it")
        found += matches
    unique: dict[Path, None] = {}
    for video in found:
        unique.setdefault(video.resolve(), None)
    return list(unique)


def output_names(videos: list[Path]) -> list[str]:
    """The file stem, or stem + a short hash of the folder when two videos share a stem."""
    stems = [v.stem for v in videos]

    def folder_hash(video: Path) -> str:
        return hashlib.sha256(str(video.parent).encode()).hexdigest()[:8]

    return [
        stem if stems.count(stem) == 1 else f"{stem}-{folder_hash(video)}"
        for stem, video in zip(stems, videos, strict=True)
    ]


def truth_for(video: Path, truth_dir: Path | None) -> str | None:
    candidates = [video.with_suffix(".csv")]
    if truth_dir is not None:
        candidates.insert(0, truth_dir / f"{video.stem}.csv")
    return next((str(c) for c in candidates if c.is_file()), None)


def make_jobs(inputs: list[str], out_dir: Path, truth_dir: Path | None = None) -> list[VideoJob]:
    videos = find_videos(inputs)
    weights = shipped_weights()
    return [
        VideoJob(str(video), name, str(out_dir), truth_for(video, truth_dir), weights)
        for video, name in zip(videos, output_names(videos), strict=True)
    ]


def write_atomically(path: Path, text: str) -> None:
    """``text`` under ``path`` complete or not at all (a temporary name, then a rename)."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.partial")
    temporary.write_text(text)
    os.replace(temporary, path)


def write_record(job: VideoJob, result: VideoResult) -> None:
    record = {"format": RECORD_FORMAT, **result.row(), "weights": job.weights}
    write_atomically(job.record_path, json.dumps(record, indent=1) + "\n")


def completed(job: VideoJob) -> VideoResult | None:
    """The earlier result when the job's output is complete and current, else None."""
    try:
        record = json.loads(job.record_path.read_text())
        current = (
            record.get("format") == RECORD_FORMAT
            and record["weights"] == job.weights
            and record["video_bytes"] == Path(job.video).stat().st_size
            and record["log_bytes"] == job.log_path.stat().st_size
            and record["status"] == "done"
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not current:
        return None
    fields = VideoResult.__dataclass_fields__
    kept = {k: v for k, v in record.items() if k in fields and k != "weights"}
    return VideoResult(**{**kept, "status": "skipped"})
