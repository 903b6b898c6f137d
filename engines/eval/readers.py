"""One reader per published dataset layout: CASME II, SAMM, SAMM-LV, CAS(ME)^2, CAS(ME)^3.

Each returns ``(annotations, problems)``: bad rows are skipped and reported with their line
number, the rest kept. What each layout looks like, and the public code that confirms it, is
in the docstring of ``engines.eval.datasets`` (the public entry point and its CLI); the tables,
frame folders and emotion mappings they share are in ``engines.eval.layouts``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from engines.eval.layouts import (
    CASME2_EMOTIONS,
    CASME3_EMOTIONS,
    CASME_SQ_EMOTIONS,
    CASME_SQ_PARTICIPANTS,
    CASME_SQ_VIDEOS,
    SAMM_EMOTIONS,
    Annotation,
    DatasetError,
    Problem,
    kind_of,
    naming_sheet,
    parse_frame,
    read_table,
    records,
    whole_number,
)

Result = tuple[list[Annotation], list[Problem]]
Emotions = Mapping[str, str | None]  # label as written (lower-cased) → 3-class or None


@dataclass
class _Builder:
    """Turns the text cells of one row into an Annotation, or into a Problem."""

    dataset: str
    emotions: Mapping[str, str | None]
    zero_is_missing: bool  # frames count from 1: a 0 is an uncoded cell
    annotations: list[Annotation] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def skip(self, line: int, message: str) -> None:
        self.problems.append(Problem(line, message))

    def add(self, line: int, subject: str, clip: str, cells: Mapping[str, str], kind: str) -> None:
        if not subject or not clip:
            return self.skip(line, "no subject or clip name")
        try:
            onset, apex, offset = (
                parse_frame(cells.get(k, ""), zero_is_missing=self.zero_is_missing)
                for k in ("onset", "apex", "offset")
            )
        except ValueError as exc:
            return self.skip(line, str(exc))
        notes = []
        if onset is None or offset is None:
            if apex is None or (onset is None and offset is None):
                return self.skip(line, "onset or offset missing, and no apex to stand in")
            notes.append(f"{'onset' if onset is None else 'offset'} not coded: apex used")
            onset = apex if onset is None else onset
            offset = apex if offset is None else offset
        if onset > offset:
            return self.skip(line, f"onset {onset} after offset {offset}")
        if apex is None:
            notes.append("apex not coded")
        elif not onset <= apex <= offset:
            notes.append(f"apex {apex} outside onset..offset {onset}..{offset}")
        raw = cells.get("emotion", "").strip()
        if raw and raw.lower() not in self.emotions:
            notes.append(f"unknown emotion {raw!r}: no 3-class label")
        self.problems += [Problem(line, note, skipped=False) for note in notes]
        self.annotations.append(
            Annotation(
                self.dataset,
                subject,
                clip,
                onset,
                apex,
                offset,
                kind,
                raw,
                self.emotions.get(raw.lower()),
                cells.get("aus", "").strip(),
                line,
            )
        )

    def result(self) -> Result:
        return self.annotations, sorted(self.problems, key=lambda p: p.line)


FRAMES = {
    "onset": ("Onset", "OnsetFrame", "Onset Frame"),
    "apex": ("Apex", "ApexFrame", "Apex Frame"),
    "offset": ("Offset", "OffsetFrame", "Offset Frame"),
}
COMMON = {
    "subject": ("Subject", "Participant"),
    "clip": ("Filename", "File name", "Video"),
    **FRAMES,
    "aus": ("Action Units", "AU", "AUs"),
    "emotion": ("Estimated Emotion", "Emotion", "Extimated Emotion"),
    "type": ("Type", "Expression type"),
}


def _check_root(root: str | Path) -> Path:
    path = Path(root)
    if not path.exists():
        raise DatasetError(f"dataset folder not found: {path}")
    if not path.is_dir():
        raise DatasetError(f"dataset path is not a folder: {path}")
    if not any(path.iterdir()):
        raise DatasetError(f"dataset folder is empty: {path}")
    return path


def _padded(text: str, prefix: str, width: int) -> str:
    """'1' → 'sub01', 'sub01' stays, '' → ''."""
    number = whole_number(text)
    return f"{prefix}{number:0{width}d}" if number is not None else text.strip().lower()


def read_casme2(
    root: str | Path, annotations: str | Path, *, emotions: Emotions = CASME2_EMOTIONS
) -> Result:
    """CASME II from CASME2-coding-20140508 (.csv, or .xlsx with openpyxl)."""
    _check_root(root)
    path = Path(annotations)
    b = _Builder("casme2", emotions, zero_is_missing=True)
    required = ("subject", "clip", "onset", "offset", "emotion")
    for line, cells in records(read_table(path), COMMON, required, source=path.name):
        b.add(line, _padded(cells["subject"], "sub", 2), cells["clip"], cells, "micro")
    return b.result()


def read_samm(
    root: str | Path, annotations: str | Path, *, emotions: Emotions = SAMM_EMOTIONS
) -> Result:
    """SAMM from SAMM_Micro_FACS_Codes_v2 (.csv, or .xlsx with openpyxl)."""
    _check_root(root)
    path = Path(annotations)
    b = _Builder("samm", emotions, zero_is_missing=True)
    required = ("subject", "clip", "onset", "offset", "emotion")
    for line, cells in records(read_table(path), COMMON, required, source=path.name):
        kind = kind_of(cells.get("type", "")) or "micro"  # the file codes micro-movements
        b.add(line, _padded(cells["subject"], "", 3), cells["clip"], cells, kind)
    return b.result()


def read_samm_lv(
    root: str | Path, annotations: str | Path, *, emotions: Emotions = SAMM_EMOTIONS
) -> Result:
    """SAMM Long Videos from SAMM_LongVideos_V2_Release (.csv, or .xlsx with openpyxl)."""
    _check_root(root)
    path = Path(annotations)
    b = _Builder("samm-lv", emotions, zero_is_missing=True)
    rows = read_table(path, sheet=("FACS_Movement_Only", 0))
    for line, cells in records(rows, COMMON, ("clip", "onset", "offset", "type"), source=path.name):
        kind = kind_of(cells["type"])
        if kind is None:
            b.skip(line, f"type {cells['type']!r} is neither Micro nor Macro")
            continue
        parts = cells["clip"].split("_")
        subject = _padded(cells.get("subject") or parts[0], "", 3)
        b.add(line, subject, "_".join(parts[:2]) if len(parts) >= 2 else "", cells, kind)
    return b.result()


def read_casme_sq(
    root: str | Path,
    annotations: str | Path,
    *,
    emotions: Emotions = CASME_SQ_EMOTIONS,
    participants: Mapping[str, str] | None = None,
    videos: Mapping[str, str] | None = None,
) -> Result:
    """CAS(ME)^2 from CAS(ME)^2code_final (.csv of sheet 1, or .xlsx with openpyxl).

    `participants` (1 → 15) and `videos` (disgust1 → 0101) default to sheets 2 and 3 of the
    workbook when it can be read, else to the published naming rules.
    """
    _check_root(root)
    path = Path(annotations)
    participants = participants or naming_sheet(path, 1, key=2, value=0) or CASME_SQ_PARTICIPANTS
    videos = videos or naming_sheet(path, 2, key=1, value=0) or CASME_SQ_VIDEOS
    b = _Builder("casme-sq", emotions, zero_is_missing=True)
    order = ("subject", "clip", "onset", "apex", "offset", "aus", "emotion", "type")
    columns = {**COMMON, "clip": ("Video code", "Video", "Filename", "Video name")}
    for line, cells in records(
        read_table(path), columns, ("onset", "offset", "type"), source=path.name, positional=order
    ):
        who, name = cells["subject"], cells["clip"].split("_")[0].lower()
        # a participant number (1..22) through the naming table, or a subject already (s15)
        number = (
            who[1:]
            if re.fullmatch(r"[sS]\d+", who)
            else participants.get(str(whole_number(who)), "")
        )
        code = name if re.fullmatch(r"\d{4}", name) else videos.get(name)
        kind = kind_of(cells["type"])
        if not number.isdigit() or code is None:
            bad = f"participant {who!r}" if not number.isdigit() else f"video {cells['clip']!r}"
            b.skip(line, f"{bad} not in the naming table")
        elif kind is None:
            b.skip(line, f"type {cells['type']!r} is neither micro nor macro")
        else:
            b.add(line, f"s{int(number)}", f"{int(number)}_{code}", cells, kind)
    return b.result()


def read_casme3(
    root: str | Path, annotations: str | Path, *, emotions: Emotions = CASME3_EMOTIONS
) -> Result:
    """CAS(ME)^3 Part A from cas(me)3_part_A_ME_label_JpgIndex_v2 (.csv, or .xlsx)."""
    _check_root(root)
    path = Path(annotations)
    b = _Builder("casme3", emotions, zero_is_missing=False)  # jpg names count from 0
    required = ("subject", "clip", "onset", "offset", "emotion")
    for line, cells in records(read_table(path), COMMON, required, source=path.name):
        kind = kind_of(cells.get("type", "")) or "micro"
        b.add(line, cells["subject"].strip(), cells["clip"].strip().lower(), cells, kind)
    return b.result()


READERS: dict[str, Callable[..., Result]] = {
    "casme2": read_casme2,
    "samm": read_samm,
    "samm-lv": read_samm_lv,
    "casme-sq": read_casme_sq,
    "casme3": read_casme3,
}
