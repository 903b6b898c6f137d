"""Ground truth of synthetic clips: ``TruthEvent`` and the MEGC-style truth CSV beside a clip.

One event per row, frames 0-based and inclusive; ``aus`` and ``landmarks`` joined by '+'.

Example:
    write_truth_csv("clip.csv", animator.events_between(0, n_frames))
    events = read_truth_csv("clip.csv")
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from stream.errors import MexliveError

CSV_FIELDS = ("onset", "apex", "offset", "kind", "emotion", "aus", "peak_px", "landmarks")


@dataclass(frozen=True)
class TruthEvent:
    """One ground-truth event (a row of the truth CSV). Frame indices 0-based, inclusive."""

    onset: int
    apex: int
    offset: int
    kind: str  # "micro" | "macro" | "blink"
    emotion: str  # "negative" | "positive" | "surprise" | "" for blinks
    aus: tuple[int, ...]  # FACS action units, e.g. (6, 12)
    peak_px: float  # largest landmark displacement at the apex, output pixels
    landmarks: tuple[int, ...]  # dlib indices (0-based) moved >= 0.5 px at the apex


def write_truth_csv(path: str | Path, events: list[TruthEvent]) -> None:
    """MEGC-style truth CSV; ``aus`` and ``landmarks`` are joined by '+'."""
    with Path(path).open("w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(CSV_FIELDS)
        for e in events:
            writer.writerow(
                [
                    e.onset,
                    e.apex,
                    e.offset,
                    e.kind,
                    e.emotion,
                    "+".join(map(str, e.aus)),
                    repr(float(e.peak_px)),
                    "+".join(map(str, e.landmarks)),
                ]
            )


def read_truth_csv(path: str | Path, warn: Callable[[str], None] | None = None) -> list[TruthEvent]:
    """Events written by ``write_truth_csv`` (or by hand).

    A malformed row is reported through ``warn`` (default: a ``warning:`` line on stderr)
    naming the file and its line, and skipped: the good rows are kept, since one typo in a
    hand-edited table should not throw away the rest. A file without a header row holding
    every column, or whose rows are all malformed, raises MexliveError; a header with no row
    is a clip without events.
    """
    warn = warn or _warn_stderr
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MexliveError(f"cannot read truth CSV {path}: {exc}") from None
    reader = csv.DictReader(text.splitlines())
    try:
        fieldnames = reader.fieldnames or []
    except csv.Error as exc:
        raise MexliveError(f"{path}: line 1: {exc}") from None
    missing = [name for name in CSV_FIELDS if name not in fieldnames]
    if missing:
        raise MexliveError(f"{path}: line 1: missing column(s) {', '.join(missing)}")
    events, bad = [], 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:  # a broken quote: that line only
            bad += 1
            warn(f"{path}: line {reader.line_num}: skipped: {exc}")
            continue
        try:
            events.append(_event(row))
        except ValueError as exc:
            bad += 1
            warn(f"{path}: line {reader.line_num}: skipped: {exc}")
    if bad and not events:
        raise MexliveError(f"{path}: none of its {bad} row(s) is usable (see the lines above)")
    return events


def _event(row: dict) -> TruthEvent:
    """One CSV row → TruthEvent; ValueError says what is wrong with it."""

    def ints(text: str) -> tuple[int, ...]:
        return tuple(int(v) for v in text.split("+")) if text else ()

    # A short row leaves the columns it lacks None; aus and landmarks may be left off.
    if any(row.get(name) is None for name in ("onset", "apex", "offset", "kind", "peak_px")):
        given = sum(value is not None for value in row.values())
        raise ValueError(f"{given} fields, expected {len(CSV_FIELDS)}")
    kind = row["kind"]
    if kind not in ("micro", "macro", "blink"):
        raise ValueError(f"kind {kind!r} is not micro, macro or blink")
    onset, apex, offset = int(row["onset"]), int(row["apex"]), int(row["offset"])
    event = TruthEvent(
        onset,
        apex,
        offset,
        kind,
        row["emotion"] or "",
        ints(row["aus"] or ""),
        float(row["peak_px"]),
        ints(row["landmarks"] or ""),
    )
    if not 0 <= onset <= apex <= offset:
        raise ValueError(f"frames {onset}, {apex}, {offset} are not 0 <= onset <= apex <= offset")
    return event


def _warn_stderr(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)
