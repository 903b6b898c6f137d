"""Event schema me-events/v1 and the sinks that write it.

One JSON object per line, flushed per line, so ``tail -f events.jsonl | jq`` follows a live run
and a killed process leaves only whole lines behind. Two types:

- ``"status"``: started, stopped (with the frame accounting), frames_dropped (batched per
  window), source_stalled, reconnected, source_error, face_lost, face_found, calibrated (the
  person's baseline is measured and floors the decoder; ``floor_capped`` and ``measured_floor``
  when the face moved during it).
- ``"blink"``: a blink (eye aperture from the landmarks, ``engines/context.py``), one line when
  it ends: ``onset_frame``, ``offset_frame``, ``onset_s``, ``offset_s``, ``duration_ms``. A
  blink is never logged as a micro-expression; readers of expression lines skip these.
- ``"expression"``: a spotted micro- or macro-expression with its emotion. Its optional
  ``context`` says what the face did over the interval: ``{"speaking": bool, "blink": bool,
  "head_speed": px/s at 90 px between the eyes}``. With the recognizer
  on, ``emotion_probs`` fuses the spotter's emotion head and the recognizer's, and the optional
  ``emotion_sources`` holds both: ``{"spotter": {..}, "recognizer": {..} | null, "fusion":
  "mean" | "spotter_only", "recognizer_weight": w,
  "recognizer_model": {"variant", "sha256", "backend"}}``
  (absent when the recognizer is off, so older readers see the same lines as before).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Protocol

from engines.labels import EMOTIONS, KINDS
from stream.errors import BadInputError, OutputError
from stream.output.durable import (
    append_line,
    check_free_space,
    cut_torn_tail,
    unwritable_reason,
)

SCHEMA = "me-events/v1"
STATUSES = (
    "started",
    "stopped",
    "frames_dropped",
    "source_stalled",
    "reconnected",
    "source_error",
    "source_ended_early",
    "face_lost",
    "face_found",
    "calibrated",
    "privacy_sticker",
    "privacy_calibrated",
)
EXPRESSION_FIELDS = (
    "seq",
    "kind",
    "onset_frame",
    "apex_frame",
    "offset_frame",
    "onset_s",
    "apex_s",
    "offset_s",
    "duration_ms",
    "emotion",
    "emotion_probs",
    "confidence",
    "rois",
    "latency_ms",
    "model",
)
FUSIONS = ("mean", "spotter_only")
BLINK_FIELDS = ("seq", "onset_frame", "offset_frame", "onset_s", "offset_s", "duration_ms")
CONTEXT_FIELDS = ("speaking", "blink", "head_speed")


def wall_clock_iso() -> str:
    """Now as ISO 8601 UTC with milliseconds, e.g. ``2026-11-27T09:00:00.123Z``."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class StatusEvent:
    """A lifecycle or health line in the event log."""

    status: str
    stream: str
    seq: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    t_mono_ns: int = field(default_factory=time.monotonic_ns)
    t_wall: str = field(default_factory=wall_clock_iso)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "type": "status",
            "status": self.status,
            "seq": self.seq,
            "t_wall": self.t_wall,
            "t_mono_ns": self.t_mono_ns,
            "stream": self.stream,
            **self.detail,
        }


@dataclass
class ExpressionEvent:
    """A spotted expression: interval, emotion and how long it took to report."""

    seq: int
    stream: str
    kind: str
    onset_frame: int
    apex_frame: int
    offset_frame: int
    onset_s: float
    apex_s: float
    offset_s: float
    emotion: str
    emotion_probs: dict[str, float]
    confidence: float
    rois: list[str]
    latency_ms: dict[str, float]
    model: dict[str, str]
    emotion_sources: dict[str, Any] | None = None  # spotter and recognizer inputs of the fusion
    context: dict[str, Any] | None = None  # speaking / blink / head_speed over the interval
    t_mono_ns: int = field(default_factory=time.monotonic_ns)
    t_wall: str = field(default_factory=wall_clock_iso)

    def to_dict(self) -> dict[str, Any]:
        body = asdict(self)
        for optional in ("emotion_sources", "context"):
            if body[optional] is None:
                del body[optional]
        body["duration_ms"] = round((self.offset_s - self.onset_s) * 1e3, 1)
        return {"schema": SCHEMA, "type": "expression", **body}


@dataclass
class BlinkEvent:
    """A blink, written when it ends (``seq`` is the frame that decided it)."""

    seq: int
    stream: str
    onset_frame: int
    offset_frame: int
    onset_s: float
    offset_s: float
    t_mono_ns: int = field(default_factory=time.monotonic_ns)
    t_wall: str = field(default_factory=wall_clock_iso)

    def to_dict(self) -> dict[str, Any]:
        body = asdict(self)
        body["duration_ms"] = round((self.offset_s - self.onset_s) * 1e3, 1)
        return {"schema": SCHEMA, "type": "blink", **body}


def validate_event(line: dict[str, Any]) -> list[str]:
    """Problems with one parsed log line against me-events/v1 (empty list: valid)."""
    problems = []
    if line.get("schema") != SCHEMA:
        problems.append(f"schema is {line.get('schema')!r}, expected {SCHEMA!r}")
    for key in ("type", "t_wall", "t_mono_ns", "stream"):
        if key not in line:
            problems.append(f"missing {key!r}")
    if line.get("type") == "status":
        if line.get("status") not in STATUSES:
            problems.append(f"unknown status {line.get('status')!r}")
    elif line.get("type") == "expression":
        problems += [f"missing {key!r}" for key in EXPRESSION_FIELDS if key not in line]
        if line.get("kind") not in KINDS:
            problems.append(f"kind {line.get('kind')!r} not in {KINDS}")
        if line.get("emotion") not in EMOTIONS:
            problems.append(f"emotion {line.get('emotion')!r} not in {EMOTIONS}")
        if "emotion_sources" in line:
            problems += _source_problems(line["emotion_sources"])
        if "context" in line:
            context = line["context"]
            if not isinstance(context, dict) or set(context) != set(CONTEXT_FIELDS):
                problems.append(f"context must hold exactly {CONTEXT_FIELDS}")
    elif line.get("type") == "blink":
        problems += [f"missing {key!r}" for key in BLINK_FIELDS if key not in line]
    else:
        problems.append(f"unknown type {line.get('type')!r}")
    return problems


def _source_problems(sources: Any) -> list[str]:
    """Problems with an expression line's optional ``emotion_sources``."""
    if not isinstance(sources, dict):
        return ["emotion_sources is not an object"]
    problems = []
    if sources.get("fusion") not in FUSIONS:
        problems.append(f"emotion_sources.fusion {sources.get('fusion')!r} not in {FUSIONS}")
    for name in ("spotter", "recognizer"):
        probs = sources.get(name)
        if probs is None and name == "recognizer" and sources.get("fusion") == "spotter_only":
            continue
        if not isinstance(probs, dict) or set(probs) != set(EMOTIONS):
            problems.append(f"emotion_sources.{name} must map {EMOTIONS} to probabilities")
    return problems


class EventSink(Protocol):
    def write(self, event: StatusEvent | ExpressionEvent | BlinkEvent) -> None: ...

    def close(self) -> None: ...


class JsonlEventLog:
    """Appends me-events/v1 lines to a file (or stdout for ``"-"``), one flush per line.

    Every line carries this run's ``session`` id, so appended runs stay apart. An unwritable
    path fails at construction with a clear message; the file (and any missing folder) is
    created at the first line, so a run that fails before it starts leaves no log behind. A
    write that fails mid-run (disk full) is reported once on stderr and analysis goes on.

    With ``max_bytes``, a line that would take the file past it first rotates the log:
    ``events.jsonl`` becomes ``events.jsonl.1`` (``.1`` becomes ``.2``, … up to ``backups``
    old files; the oldest is deleted) and a fresh file continues with the same session. A line
    is never split across files (one longer than ``max_bytes`` gets a file of its own).

    Example:
        >>> with JsonlEventLog("-") as log:  # doctest: +SKIP
        ...     log.write(StatusEvent("started", stream="cam0"))
    """

    def __init__(
        self,
        path: str | Path,
        session: str | None = None,
        max_bytes: int | None = None,
        backups: int = 5,
    ) -> None:
        if max_bytes is not None and max_bytes <= 0:
            raise BadInputError(f"event log size limit must be positive: {max_bytes} bytes")
        if backups < 0:
            raise BadInputError(f"event log backups must be >= 0: {backups}")
        self.path = str(path)
        self.session = session or uuid.uuid4().hex[:12]
        self.max_bytes = max_bytes
        self.backups = backups
        self.rotations = 0
        self._size = 0
        self._lock = threading.Lock()
        self._failed = False
        self.lines_written = 0
        self._file: IO[str] | None
        if self.path == "-":
            self._file, self._owns = sys.stdout, False
            return
        problem = unwritable_reason(self.path)
        if problem is not None:
            raise OutputError(f"cannot write event log {self.path}: {problem}")
        check_free_space(self.path)
        self._file, self._owns = None, True  # opened at the first line
        self._size = os.path.getsize(self.path) if os.path.exists(self.path) else 0

    def _open(self) -> IO[str]:
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        cut = cut_torn_tail(self.path)  # a writer killed mid-line before this session
        if cut:
            print(
                f"mexlive: event log {self.path}: cut {cut} bytes of a line a killed writer "
                "left unfinished",
                file=sys.stderr,
            )
        file = open(self.path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115
        self._size = os.path.getsize(self.path)
        return file

    def write(self, event: StatusEvent | ExpressionEvent | BlinkEvent) -> None:
        body = event.to_dict()
        body["session"] = self.session
        line = json.dumps(body, separators=(",", ":"), allow_nan=False) + "\n"
        n_bytes = len(line.encode("utf-8"))
        with self._lock:
            try:
                if self._file is None:
                    self._file = self._open()
                if self._must_rotate(n_bytes):
                    self._rotate()
                append_line(self._file, line)  # the whole line or none of it
                self._size += n_bytes
                self.lines_written += 1
            except (OSError, ValueError) as exc:
                if not self._failed:
                    self._failed = True
                    print(f"mexlive: event log {self.path} write failed: {exc}", file=sys.stderr)

    def _must_rotate(self, n_bytes: int) -> bool:
        return (
            self._owns
            and self.max_bytes is not None
            and self._size > 0
            and self._size + n_bytes > self.max_bytes
        )

    def _rotate(self) -> None:
        """Shift ``path.i`` to ``path.i+1`` (the last falls off) and start a fresh file."""
        self._file.close()
        try:
            for i in range(self.backups - 1, 0, -1):
                older = f"{self.path}.{i}"
                if os.path.exists(older):
                    os.replace(older, f"{self.path}.{i + 1}")
            if self.backups > 0:
                os.replace(self.path, f"{self.path}.1")
            else:
                os.remove(self.path)
            self.rotations += 1
        finally:  # a failed rename keeps logging into the same file (reported once by write)
            self._file = open(self.path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115
            self._size = os.path.getsize(self.path)

    def close(self) -> None:
        with self._lock:
            if self._owns and self._file is not None and not self._file.closed:
                self._file.close()

    def __enter__(self) -> JsonlEventLog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class EventBus:
    """Fans events out to sinks from any thread and counts them by type/status/kind."""

    def __init__(self, sinks: list[EventSink] | None = None) -> None:
        self.sinks = list(sinks or [])
        self._lock = threading.Lock()
        self.counts: dict[str, int] = {}
        self._expressions_by_stream: dict[str, int] = {}

    def emit(self, event: StatusEvent | ExpressionEvent | BlinkEvent) -> None:
        if isinstance(event, StatusEvent):
            key = event.status
        elif isinstance(event, BlinkEvent):
            key = "blink"
        else:
            key = f"expression:{event.kind}"
        with self._lock:
            self.counts[key] = self.counts.get(key, 0) + 1
            if isinstance(event, ExpressionEvent):
                n = self._expressions_by_stream.get(event.stream, 0)
                self._expressions_by_stream[event.stream] = n + 1
        for sink in self.sinks:
            sink.write(event)

    @property
    def expressions(self) -> int:
        return sum(n for key, n in self.counts.items() if key.startswith("expression:"))

    def expressions_of(self, stream: str) -> int:
        """Expression events of one stream (several pipelines can share a bus)."""
        return self._expressions_by_stream.get(stream, 0)

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()
