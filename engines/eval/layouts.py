"""Low-level part of `engines.eval.datasets` (used by its readers, `engines.eval.readers`): the
record, annotation tables, emotion tables, and where each layout keeps a clip's frames.

The published annotation files are Excel workbooks. Reading ``.xlsx`` needs ``openpyxl``, which
mexlive does not depend on: it is used when importable, and otherwise the error says to save
the sheet as CSV. A CSV saved from the sheet reads the same way, title rows and all, because
the header row is searched for by its column names instead of being assumed at a fixed row.

Line numbers are 1-based: the physical line of a CSV record, or the row number Excel shows.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from engines.errors import DataError

FRAME_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp"})
VIDEO_SUFFIXES = frozenset({".avi", ".mp4", ".mov", ".mkv"})
HEADER_SEARCH_ROWS = 40  # SAMM puts its header at row 14, SAMM-LV at row 10: search well past both

# Per-dataset label → MEGC composite class (MEGC 2019: negative = repression, anger, contempt,
# disgust, fear, sadness; positive = happiness; surprise = surprise). None: no 3-class label
# ("others"), the row is still a spotting target.
CASME2_EMOTIONS: Mapping[str, str | None] = {
    "happiness": "positive",
    "disgust": "negative",
    "repression": "negative",
    "sadness": "negative",
    "fear": "negative",
    "surprise": "surprise",
    "others": None,
}
SAMM_EMOTIONS: Mapping[str, str | None] = {
    "happiness": "positive",
    "anger": "negative",
    "contempt": "negative",
    "disgust": "negative",
    "fear": "negative",
    "sadness": "negative",
    "surprise": "surprise",
    "other": None,
    "others": None,
}
CASME_SQ_EMOTIONS: Mapping[str, str | None] = {
    "positive": "positive",
    "negative": "negative",
    "surprise": "surprise",
    "others": None,
    "other": None,
}
CASME3_EMOTIONS: Mapping[str, str | None] = {
    "happy": "positive",
    "happiness": "positive",
    "disgust": "negative",
    "fear": "negative",
    "anger": "negative",
    "sad": "negative",
    "sadness": "negative",
    "surprise": "surprise",
    "others": None,
    "other": None,
}

# CAS(ME)^2 naming rules (sheets 2 and 3 of CAS(ME)^2code_final.xlsx), as public MEGC code
# prints them; used when those sheets cannot be read (a CSV of sheet 1, or no openpyxl).
CASME_SQ_PARTICIPANTS: Mapping[str, str] = {
    str(i): str(s)
    for i, s in enumerate((15, 16, 19, 20, 21, 22, 23, 24, 25, 26, 27, 29, 30, 31, 32, 33, 34,
                           35, 36, 37, 38, 40), start=1)
}  # fmt: skip
CASME_SQ_VIDEOS: Mapping[str, str] = {
    "disgust1": "0101", "disgust2": "0102", "anger1": "0401", "anger2": "0402",
    "happy1": "0502", "happy2": "0503", "happy3": "0505", "happy4": "0507", "happy5": "0508",
}  # fmt: skip


@dataclass(frozen=True)
class Annotation:
    """One coded expression. Frames are inclusive, numbered as in the image file names."""

    dataset: str  # 'casme2' | 'samm' | 'samm-lv' | 'casme-sq' | 'casme3'
    subject: str  # the subject folder: 'sub01', '006', 's15', 'spNO.1'
    clip: str  # clip folder / video id: 'EP02_01f', '006_1_2', '006_1', '15_0101', 'a'
    onset: int
    apex: int | None  # None where the coders left it out
    offset: int
    kind: str  # 'micro' | 'macro'
    emotion_raw: str  # the label as written ('' where the dataset has none)
    emotion: str | None  # 'negative' | 'positive' | 'surprise'; None: no 3-class label
    aus: str  # action units as written, e.g. 'R12+4'
    source_line: int  # line of the CSV / row of the sheet


class DatasetError(DataError):
    """A dataset folder or annotation file that cannot be used; the message says what to do."""


@dataclass(frozen=True)
class Problem:
    """One bad annotation row: skipped, or kept with a repair (`skipped=False`)."""

    line: int
    message: str
    skipped: bool = True

    def __str__(self) -> str:
        return f"line {self.line}: {self.message} ({'skipped' if self.skipped else 'kept'})"


Row = tuple[int, list[str]]  # (1-based line / sheet row, cells as text)


def norm(text: str) -> str:
    """'Onset Frame', 'OnsetFrame' and 'onset_frame' all compare as 'onsetframe'."""
    return re.sub(r"[^a-z0-9]", "", text.lower())


def read_table(path: Path, sheet: int | str | Sequence[int | str] = 0) -> list[Row]:
    """All rows of a CSV, or of one sheet of an .xlsx (the first of `sheet` that exists)."""
    if not path.exists():
        raise DatasetError(f"annotation file not found: {path}")
    if not path.is_file():
        raise DatasetError(f"annotation path is not a file: {path}")
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv", ".txt"):
        return _read_csv(path)
    if suffix in (".xlsx", ".xlsm"):
        return _read_xlsx(path, [sheet] if isinstance(sheet, int | str) else list(sheet))
    if suffix == ".xls":
        raise DatasetError(
            f"{path.name}: old-style .xls workbooks are not read; open it in a spreadsheet "
            "program and save the annotation sheet as CSV, then pass the .csv"
        )
    raise DatasetError(f"{path.name}: expected an annotation table (.csv, or .xlsx)")


def _read_csv(path: Path) -> list[Row]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")  # spreadsheet exports on Windows; never fails
    if not text.strip():
        raise DatasetError(f"annotation file is empty: {path}")
    try:  # European spreadsheet exports use ';', some people save tab-separated
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(text[:8192], ",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    rows: list[Row] = []
    next_line = 1
    for cells in reader:
        rows.append((next_line, [c.strip() for c in cells]))
        next_line = reader.line_num + 1  # a quoted cell may span lines: keep the first
    return rows


def _read_xlsx(path: Path, sheets: list[int | str]) -> list[Row]:
    if importlib.util.find_spec("openpyxl") is None:
        raise DatasetError(
            f"{path.name}: reading .xlsx needs the openpyxl package, which is not installed. "
            "Open the workbook in a spreadsheet program and save the annotation sheet as CSV "
            "(keep its title and header rows), then pass the .csv instead"
        )
    import openpyxl  # lazy: optional

    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # zip, XML and openpyxl errors all mean "not a usable workbook"
        raise DatasetError(f"cannot read {path.name} as an Excel workbook: {exc}") from None
    try:
        for sheet in sheets:
            names = book.sheetnames
            if isinstance(sheet, int) and sheet < len(names):
                sheet = names[sheet]
            if sheet in names:
                return [
                    (n, [_cell_text(v) for v in values])
                    for n, values in enumerate(book[sheet].iter_rows(values_only=True), start=1)
                ]
        raise DatasetError(f"{path.name}: no sheet {sheets[0]!r} (sheets: {book.sheetnames})")
    finally:
        book.close()


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # Excel stores frame numbers as floats: 5476.0 → "5476"
    return str(value).strip()


def records(
    rows: Sequence[Row],
    columns: Mapping[str, Sequence[str]],
    required: Sequence[str],
    *,
    source: str,
    positional: Sequence[str] | None = None,
) -> Iterator[tuple[int, dict[str, str]]]:
    """(line, {field: text}) per non-empty row below the header row.

    Args:
        columns: field → the column labels it may carry ("OnsetFrame", "Onset Frame", ...).
        required: fields the header must have.
        source: the file name, for the error message.
        positional: field order to use when no header row is found (CAS(ME)^2 has none);
            without it a missing header is an error.
    """
    start, index = 0, {}
    for i, (_line, cells) in enumerate(rows[:HEADER_SEARCH_ROWS]):
        names = [norm(c) for c in cells]
        found = {}
        for field, labels in columns.items():
            hits = [names.index(norm(lb)) for lb in labels if norm(lb) in names]
            if hits:
                found[field] = hits[0]
        if all(f in found for f in required):
            start, index = i + 1, found
            break
    else:
        if positional is None:
            wanted = ", ".join(columns[f][0] for f in required)
            raise DatasetError(
                f"{source}: no header row with the columns {wanted} in its first "
                f"{HEADER_SEARCH_ROWS} rows; is this the right annotation file?"
            )
        index = {field: i for i, field in enumerate(positional)}
    for line, cells in rows[start:]:
        if any(cells):
            yield line, {f: (cells[i] if i < len(cells) else "") for f, i in index.items()}


def parse_frame(text: str, *, zero_is_missing: bool) -> int | None:
    """A frame number, or None where the coders left it out ('', '/', '-', -1, or 0 where
    frames count from 1). Raises ValueError for anything else that is not a whole number."""
    t = text.strip().lower()
    if t in ("", "/", "-", "-1", "nan", "none", "n/a", "na"):
        return None
    try:
        value = float(t)
    except ValueError:
        raise ValueError(f"not a frame number: {text!r}") from None
    if not value.is_integer() or value < 0:
        raise ValueError(f"not a frame number: {text!r}")
    return None if value == 0 and zero_is_missing else int(value)


def whole_number(text: str) -> int | None:
    """'6', '006', '6.0' → 6; anything else → None."""
    try:
        value = float(text)
    except ValueError:
        return None
    return int(value) if value.is_integer() and value >= 0 else None


def kind_of(text: str) -> str | None:
    """'micro-expression', 'Micro - 1/2', 'Macro' → 'micro' / 'macro'; else None."""
    t = norm(text)
    return "micro" if t.startswith("micro") else "macro" if t.startswith("macro") else None


def _subdirs(folder: Path) -> list[Path]:
    try:
        with os.scandir(folder) as entries:
            return sorted(Path(e.path) for e in entries if e.is_dir())
    except OSError:
        return []


def find_dir(
    root: Path, parts: Sequence[str], *, max_depth: int = 3, prefix_last: bool = False
) -> Path | None:
    """root/parts[0]/parts[1]/..., else the same under up to `max_depth` folders of any name.

    Names compare case-insensitively (CAS(ME)^3 is seen as spNO.1 and spNo.1); with
    `prefix_last` the last part only has to start the folder name (15_0101disgustingteeth).
    Shallowest match first, then alphabetical.
    """
    wanted = [p.lower() for p in parts]
    level = [root]
    for _depth in range(max_depth + 1):
        for base in level:
            current: Path | None = base
            for i, name in enumerate(wanted):
                prefix = prefix_last and i == len(wanted) - 1
                subs = _subdirs(current) if current is not None else []
                match = [
                    d
                    for d in subs
                    if (d.name.lower().startswith(name) if prefix else d.name.lower() == name)
                ]
                current = match[0] if match else None
            if current is not None:
                return current
        level = [d for base in level for d in _subdirs(base)]
    return None


def numbered_frames(folder: Path) -> list[tuple[int, Path]]:
    """(number, path) of the images in `folder`, by the trailing number of the file name:
    img46.jpg, reg_img46.jpg, 006_05562.jpg, 006_1_0001.jpg and 1948.jpg all work."""
    frames = []
    for path in folder.iterdir():
        match = re.search(r"(\d+)$", path.stem)
        if match and path.suffix.lower() in FRAME_SUFFIXES:
            frames.append((int(match.group(1)), path))
    return sorted(frames)


def naming_sheet(path: Path, sheet: int, *, key: int, value: int) -> dict[str, str]:
    """A CAS(ME)^2 naming sheet as {key column: value column}; {} when it cannot be read."""
    if path.suffix.lower() != ".xlsx":
        return {}
    try:
        rows = read_table(path, sheet)
    except DatasetError:
        return {}
    table = {}
    for _line, cells in rows:
        if len(cells) > max(key, value) and cells[key] and cells[value]:
            k, v = cells[key].lower(), cells[value]
            number = whole_number(k)
            k = str(number) if number is not None else k
            table[k] = v.zfill(4) if sheet == 2 and v.isdigit() else v.lstrip("sS")
    return table


def clip_folder(root: str | Path, annotation: Annotation) -> Path | None:
    """The folder holding the annotation's frames, or None."""
    root, a = Path(root), annotation
    if a.dataset == "casme-sq":  # rawpic/s15/15_0101disgustingteeth, or misfiled elsewhere
        return find_dir(root, [a.subject, a.clip], prefix_last=True) or find_dir(
            root, [a.clip], prefix_last=True
        )
    if a.dataset == "casme3":
        return find_dir(root, [a.subject, a.clip, "color"], max_depth=4) or find_dir(
            root, [f"{a.subject}_{a.clip}_{a.onset}"], max_depth=4
        )
    if a.dataset == "samm-lv":
        return find_dir(root, [a.clip])
    return find_dir(root, [a.subject, a.clip])


def clip_video(root: str | Path, annotation: Annotation) -> Path | None:
    """The video file of a CAS(ME)^2 clip (rawvideo/s15/15_0101....avi); None elsewhere."""
    if annotation.dataset != "casme-sq":
        return None
    root = Path(root)
    for folder in (
        find_dir(root, ["rawvideo", annotation.subject]),
        find_dir(root, [annotation.subject]),
    ):
        videos = sorted(folder.glob(f"{annotation.clip}*")) if folder else []
        videos = [v for v in videos if v.suffix.lower() in VIDEO_SUFFIXES]
        if videos:
            return videos[0]
    return None


def clip_frames(root: str | Path, annotation: Annotation, *, whole: bool = False) -> list[Path]:
    """Frame files from onset to offset (the whole video with `whole`), in frame order.

    Raises DatasetError when the frames are not there (pointing to `clip_video` when only a
    video is).
    """
    a = annotation
    folder = clip_folder(root, a)
    if folder is None:
        video = clip_video(root, a)
        where = f"{a.dataset} {a.subject}/{a.clip}"
        if video is not None:
            raise DatasetError(f"{where}: no frame folder, only the video {video} (clip_video)")
        raise DatasetError(f"{where}: no frame folder under {root}")
    frames = [p for n, p in numbered_frames(folder) if whole or a.onset <= n <= a.offset]
    if not frames:
        raise DatasetError(f"{folder}: no frames numbered {a.onset}..{a.offset}")
    return frames
