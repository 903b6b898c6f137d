"""``mexlive tail LOG [--follow]``: a me-events/v1 log, one readable line per event.

Expression events are coloured by emotion (negative red, positive green, surprise yellow);
status lines are dim. With ``--follow`` it keeps reading as the log grows and follows
rotation (``events.jsonl`` renamed to ``events.jsonl.1`` and a fresh file started): the
rest of the old file is read first, then any file rotated since, then the new one from its
start, so no line is missed (unless more files rotate between two polls than are kept).

Only whole lines are shown. A torn last line (a writer killed mid-line,
``engines/eval/eventlog.py``) is skipped with one warning once it is known to be torn: at the
end of the log without ``--follow``, or when its file is rotated or cut back by the next
session; while following, a line without its newline yet is one being written.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from engines.eval.eventlog import read_whole_lines, torn_warning
from stream.errors import BadInputError, DataError, report_error
from stream.parsing import Parser

RESET, DIM, BOLD = "\x1b[0m", "\x1b[2m", "\x1b[1m"
EMOTION_COLOURS = {"negative": "\x1b[31m", "positive": "\x1b[32m", "surprise": "\x1b[33m"}
STATUS_SKIP = {"schema", "type", "status", "seq", "t_wall", "t_mono_ns", "stream", "session"}


def format_event(raw: str, colour: bool) -> str:
    """One log line (JSON text) as one terminal line."""
    try:
        event: dict[str, Any] = json.loads(raw)
    except json.JSONDecodeError:
        return _paint(f"(not JSON) {raw.strip()[:120]}", DIM, colour)
    clock = str(event.get("t_wall", ""))[11:23]  # HH:MM:SS.mmm of the ISO stamp
    stream = event.get("stream", "?")
    if event.get("type") == "expression":
        latency = event.get("latency_ms", {}).get("capture_to_event")
        text = (
            f"{clock} {stream} {event.get('kind', '?'):5s} {event.get('emotion', '?'):8s} "
            f"conf {event.get('confidence', 0):.2f}  apex {event.get('apex_s', 0):7.2f} s  "
            f"{event.get('duration_ms', 0):4.0f} ms  frames {event.get('onset_frame')}-"
            f"{event.get('offset_frame')}  {','.join(event.get('rois', []))}"
            + (f"  +{latency:.0f} ms" if latency is not None else "")
        )
        return _paint(text, BOLD + EMOTION_COLOURS.get(event.get("emotion"), ""), colour)
    detail = {k: v for k, v in event.items() if k not in STATUS_SKIP}
    body = json.dumps(detail, separators=(",", ":"))
    text = f"{clock} {stream} · {event.get('status', event.get('type', '?'))}"
    if detail:
        text += f"  {body[:160]}{'…' if len(body) > 160 else ''}"
    return _paint(text, DIM, colour)


def _paint(text: str, style: str, colour: bool) -> str:
    return f"{style}{text}{RESET}" if colour and style else text


class LogFollower:
    """Whole lines of a growing, rotating log file.

    Args:
        path: the live log (the name the writer keeps writing to).
        poll_s: how often to look for new lines at the end of the file.
        sleep: the wait between polls (a test may pass its own).
        warn: where the warning about a torn last line goes (default: stderr).
    """

    def __init__(
        self,
        path: str | Path,
        poll_s: float = 0.2,
        sleep: Callable[[float], None] = time.sleep,
        warn: Callable[[str], None] | None = None,
    ):
        self.path = Path(path)
        self.poll_s = poll_s
        self.sleep = sleep
        self.warn = warn or _warn

    def lines(self, follow: bool) -> Iterator[str | None]:
        """Every whole line from the start; with ``follow``, then the new ones forever. Yields
        None once, when the lines already written have all been read (the backlog ends)."""
        file = self._open(wait=follow)
        pending = ""  # a line the writer has begun but not ended yet
        start = 0  # where ``pending`` begins in the file (bytes: lines start clean in UTF-8)
        number = 0  # whole lines read from the current file
        caught_up = False
        try:
            while True:
                if not pending:
                    start = file.tell()
                chunk = file.readline()
                if chunk:
                    pending += chunk
                    if pending.endswith("\n"):
                        number += 1
                        yield pending.rstrip("\n")
                        pending = ""
                    continue
                if not caught_up:
                    caught_up = True
                    if pending and not follow:  # the log ends in a line no one will end
                        self.warn(torn_warning(self.path, number + 1, pending))
                    yield None
                if not follow:
                    return
                if pending and self._cut_back(file, start, pending):
                    # The next session cut the torn line off before appending (durable.py's
                    # cut_torn_tail): read on from where it began, in the same file.
                    self.warn(torn_warning(self.path, number + 1, pending))
                    file.seek(start)
                    pending = ""
                    continue
                if self._replaced(file):  # rotated: the old file is read to its end
                    # Lines the writer appended after our last read and before the rename
                    # are still in the old file: read them before letting it go.
                    for line in (pending + file.read()).splitlines(keepends=True):
                        number += 1
                        if line.endswith("\n"):
                            yield line.rstrip("\n")
                        else:  # rotated or cut back: that line will never be ended
                            self.warn(torn_warning(self.path, number, line))
                    inode = os.fstat(file.fileno()).st_ino
                    file.close()
                    for newer in self._rotated_after(inode):  # several rotations in one poll
                        yield from self._whole_lines(newer)
                    file, pending, number = self._open(wait=True), "", 0
                    continue
                self.sleep(self.poll_s)
        finally:
            file.close()

    @staticmethod
    def _cut_back(file: IO[str], start: int, pending: str) -> bool:
        """The file we read no longer holds ``pending`` at ``start``: the line was cut off (and
        maybe written over by the next session). A rotated file keeps its bytes: not cut."""
        # Read through our own descriptor (the renamed file after a rotation), compared as
        # text decoded the way we read it; 4 bytes per character cover any UTF-8.
        raw = os.pread(file.fileno(), 4 * len(pending), start)
        return not raw.decode("utf-8", errors="replace").startswith(pending)

    def _open(self, wait: bool) -> IO[str]:
        while True:
            try:
                return open(self.path, encoding="utf-8", errors="replace")
            except FileNotFoundError:
                if not wait:
                    raise
                self.sleep(self.poll_s)  # not written yet, or between rename and reopen

    def _rotated_after(self, inode: int) -> list[Path]:
        """The rotated files written after the one with ``inode``, oldest first (``.k`` is
        older than ``.k-1``); none when that file is not found among them."""
        for k in range(1, 10_000):
            rotated = Path(f"{self.path}.{k}")
            try:
                if rotated.stat().st_ino == inode:
                    return [Path(f"{self.path}.{j}") for j in range(k - 1, 0, -1)]
            except FileNotFoundError:
                return []
        return []

    def _whole_lines(self, path: Path) -> Iterator[str]:
        try:
            lines = read_whole_lines(path, self.warn, errors="replace")
        except FileNotFoundError:
            return  # rotated away (past the kept count) before it could be read
        for _, line in lines:
            yield line

    def _replaced(self, file: IO[str]) -> bool:
        try:
            now = os.stat(self.path)
        except FileNotFoundError:
            return False  # mid-rotation: wait for the new file
        mine = os.fstat(file.fileno())
        return now.st_ino != mine.st_ino or now.st_size < file.tell()


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="mexlive tail",
        description="Pretty-print a me-events/v1 log: one coloured line per expression, "
        "dim status lines.",
    )
    parser.add_argument("log", help="the event log (JSON Lines)")
    parser.add_argument(
        "-f", "--follow", action="store_true", help="keep printing new lines; follows rotation"
    )
    parser.add_argument(
        "-n",
        "--lines",
        type=int,
        default=None,
        help="start with the last N lines (default: all; 10 with --follow)",
    )
    parser.add_argument(
        "--color",
        choices=("auto", "always", "never"),
        default="auto",
        help="ANSI colours (default: auto, when printing to a terminal)",
    )
    return parser


def main(argv: list[str] | None = None, out: IO[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = out or sys.stdout
    colour = args.color == "always" or (args.color == "auto" and out.isatty())
    last_n = args.lines if args.lines is not None else (10 if args.follow else None)
    if last_n is not None and last_n < 0:
        return report_error(BadInputError("--lines must be >= 0"), "mexlive tail")
    if not args.follow and not Path(args.log).is_file():
        return report_error(DataError(f"no such log: {args.log}"), "mexlive tail")
    try:
        for line in _skip_to_last(LogFollower(args.log).lines(args.follow), last_n):
            if line.strip():
                print(format_event(line, colour), file=out, flush=True)
    except (KeyboardInterrupt, BrokenPipeError):
        pass
    return 0


def _warn(message: str) -> None:
    print(f"mexlive tail: warning: {message}", file=sys.stderr, flush=True)


def _skip_to_last(lines: Iterator[str | None], last_n: int | None) -> Iterator[str]:
    """Of the lines already written, the last ``last_n`` (None: all); then every new one."""
    backlog: deque[str] = deque(maxlen=last_n)  # maxlen None: unbounded
    in_backlog = True
    for line in lines:
        if line is None:
            in_backlog = False
            yield from backlog
        elif in_backlog and last_n is not None:
            backlog.append(line)
        else:
            yield line
