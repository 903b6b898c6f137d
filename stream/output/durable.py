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

from stream.errors import MexliveError


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


def check_free_space(path: str | Path) -> None:
    """MexliveError when the file system holding ``path`` has no free space at all."""
    try:
        stats = os.statvfs(path)
    except (OSError, AttributeError):  # no statvfs (Windows) or an odd path: writes will tell
        return
    if stats.f_blocks > 0 and stats.f_bavail == 0:
        raise MexliveError(f"cannot write event log {path}: no space left on the device")
