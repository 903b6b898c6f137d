"""Ground truth of synthetic clips: ``TruthEvent`` and the MEGC-style truth CSV beside a clip.

One event per row, frames 0-based and inclusive; ``aus`` and ``landmarks`` joined by '+'.

Example:
    write_truth_csv("clip.csv", animator.events_between(0, n_frames))
    events = read_truth_csv("clip.csv")
"""

from __future__ import annotations

import csv
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


def read_truth_csv(path: str | Path) -> list[TruthEvent]:
    """Events written by ``write_truth_csv``; MexliveError names the file and the line of
    anything malformed."""

    def ints(text: str) -> tuple[int, ...]:
        return tuple(int(v) for v in text.split("+")) if text else ()

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MexliveError(f"cannot read truth CSV {path}: {exc}") from None
    reader = csv.DictReader(text.splitlines())
    missing = [name for name in CSV_FIELDS if name not in (reader.fieldnames or [])]
    if missing:
        raise MexliveError(f"{path}: line 1: missing column(s) {', '.join(missing)}")
    events = []
    for row in reader:
        line = reader.line_num
        try:
            onset, apex, offset = int(row["onset"]), int(row["apex"]), int(row["offset"])
            event = TruthEvent(
                onset,
                apex,
                offset,
                row["kind"],
                row["emotion"] or "",
                ints(row["aus"] or ""),
                float(row["peak_px"]),
                ints(row["landmarks"] or ""),
            )
        except (TypeError, ValueError) as exc:
            raise MexliveError(f"{path}: line {line}: {exc}") from None
        if row["kind"] not in ("micro", "macro", "blink"):
            raise MexliveError(
                f"{path}: line {line}: kind {row['kind']!r} is not micro, macro or blink"
            )
        if not 0 <= onset <= apex <= offset:
            raise MexliveError(
                f"{path}: line {line}: frames {onset}, {apex}, {offset} are not "
                "0 <= onset <= apex <= offset"
            )
        events.append(event)
    return events
