"""The whole lines of an event log (me-events/v1, JSON Lines): what every reader of a log reads.

The writer appends each line with one ``os.write`` (``stream/output/durable.py``), yet a process
killed by SIGKILL in the middle of a large write can leave the start of a line without its
newline; the next session cuts it off before it appends (``cut_torn_tail``), but until then the
log ends in a torn line. That line was never whole, so no event is lost by skipping it: a
reader skips it with one warning and reads everything before it. Readers: ``mexlive tail``
(``stream/output/tail.py``), ``engines.eval.evaluate``, ``mexlive batch``'s reading of a
video's log (``stream/app/batch_work.py``).

It lives in ``engines`` because ``engines.eval`` reads logs and never imports ``stream``;
``stream.output`` may use ``engines.eval``.

Example:
    >>> lines = read_whole_lines(Path("events.jsonl"), warn=print)  # doctest: +SKIP
    >>> events = [json.loads(text) for _, text in lines]  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path


def split_whole_lines(data: bytes) -> tuple[list[bytes], bytes]:
    """``data`` as (its whole lines without their newline, the torn rest after the last
    newline: ``b""`` when ``data`` ends in one or is empty)."""
    end = data.rfind(b"\n") + 1  # 0 when there is no newline at all: everything is torn
    whole, torn = data[:end], data[end:]
    return (whole[:-1].split(b"\n") if whole else []), torn


def torn_warning(where: str | Path, line_number: int, torn: bytes | str) -> str:
    """The one warning a reader gives for a torn last line (``line_number`` 1-based)."""
    size = len(torn.encode("utf-8") if isinstance(torn, str) else torn)
    return (
        f"{where}:{line_number}: skipped a torn last line ({size} bytes without a newline: "
        "the writer was stopped mid-line); the lines before it are read"
    )


def read_whole_lines(
    path: str | Path, warn: Callable[[str], None], errors: str = "strict"
) -> list[tuple[int, str]]:
    """(1-based line number, text) of each whole line of the log at ``path``; a torn last line
    is skipped with one ``warn``. Only whole lines are decoded (a torn line may end inside a
    UTF-8 character); with ``errors="strict"`` a whole line that is not UTF-8 raises
    UnicodeDecodeError ("replace": a reader that only shows lines). OSError from reading."""
    lines, torn = split_whole_lines(Path(path).read_bytes())
    if torn:
        warn(torn_warning(path, len(lines) + 1, torn))
    return [(n, line.decode("utf-8", errors)) for n, line in enumerate(lines, start=1)]
