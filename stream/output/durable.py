"""Whole-line appends for the event log: a line reaches the file entire or not at all.

``tail -f`` readers and a process killed with SIGKILL both rely on it: every line in the log
parses. Python's buffered text files can leave half a line behind when the disk fills in the
middle of a write; ``append_line`` writes the encoded line with ``os.write`` (one system call
for any line an event makes) and, if the disk fills part way, cuts the file back to where the
line began.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import IO

from stream.errors import OutputError


def append_line(file: IO[str], line: str) -> None:
    """Append ``line`` (ending in a newline) to ``file``; raises OSError with nothing written."""
    try:
        fd = file.fileno()
    except (OSError, ValueError, AttributeError):  # not an OS file (a StringIO, a test's stdout)
        file.write(line)
        file.flush()
        return
    file.flush()  # anything written through the text layer goes first, in order
    data = line.encode("utf-8")
    try:
        start: int | None = os.lseek(fd, 0, os.SEEK_END)
    except OSError:  # a pipe or a terminal: nothing to cut back
        start = None
    written = 0
    try:
        while written < len(data):
            written += os.write(fd, data[written:])
    except OSError:
        if written and start is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, start)  # half a line would break every reader after it
        raise


def cut_torn_tail(path: str | Path) -> int:
    """Cut a log back to its last whole line; returns the bytes cut (0 when it ends in one).

    A process killed by SIGKILL in the middle of a large ``write`` can leave part of a line:
    Linux stops copying between pages when a fatal signal is pending. That line was never
    whole, so no event is lost by cutting it; left in place, the next session's first line
    would be glued to it and neither would parse."""
    try:
        with open(path, "r+b") as file:
            size = file.seek(0, os.SEEK_END)
            if size == 0:
                return 0
            file.seek(size - 1)
            if file.read(1) == b"\n":
                return 0
            start = max(size - (1 << 20), 0)  # a line is far shorter than 1 MiB
            file.seek(start)
            tail = file.read()
            end = start + tail.rfind(b"\n") + 1 if b"\n" in tail else start
            file.truncate(end)
            return size - end
    except FileNotFoundError:
        return 0


def unwritable_reason(path: str | Path) -> str | None:
    """Why a file at ``path`` could not be appended to or created (None: it could), found
    without creating anything: the nearest folder above it that exists must be a writable
    folder (a file there, say ``--events notes.txt/e.jsonl``, can never hold one)."""
    path = Path(path)
    try:
        if path.exists():
            if path.is_dir():
                return "it is a folder"
            return None if os.access(path, os.W_OK) else "permission denied"
        existing = next(folder for folder in path.absolute().parents if folder.exists())
    except OSError as exc:  # a folder on the way that may not be searched
        return exc.strerror or str(exc)
    if not existing.is_dir():
        return f"{existing} is a file, not a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"permission denied in {existing}"
    return None


def check_free_space(path: str | Path) -> None:
    """OutputError when the file system that holds (or would hold) ``path`` has no free space
    at all."""
    existing = next(p for p in (Path(path), *Path(path).absolute().parents) if p.exists())
    try:
        stats = os.statvfs(existing)
    except (OSError, AttributeError):  # no statvfs (Windows) or an odd path: writes will tell
        return
    if stats.f_blocks > 0 and stats.f_bavail == 0:
        raise OutputError(f"cannot write event log {path}: no space left on the device")
