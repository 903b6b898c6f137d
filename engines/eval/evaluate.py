"""Score mexlive event logs against synthetic ground truth: the MEGC spotting/recognition table.

    python -m engines.eval.evaluate --pred events.jsonl --truth clip.csv
    python -m engines.eval.evaluate --pred logs/ --truth videos/ --json

PRED is one me-events/v1 JSON Lines log, or a folder of ``*.jsonl`` (one per video); TRUTH is
the ground-truth CSV written beside a synthetic video, or a folder of them. Folders are paired
by file stem (``clip_0001.jsonl`` ↔ ``clip_0001.csv``). Blinks in the truth are not spotting
targets and are dropped. Spotting counts are summed over videos before F1
(``engines.eval.metrics``);
recognition (UF1, UAR) and STRS are over the correctly spotted micro-expressions.

This module reads the CSV itself rather than through ``stream.synthetic.writers``: ``engines`` must
not import ``stream``.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engines.errors import BadInputError, DataError, MexliveError, report_error
from engines.eval.eventlog import read_whole_lines
from engines.eval.metrics import (
    VideoIntervals,
    spotting_matches,
    spotting_report,
    strs,
    uar,
    uf1,
)
from engines.labels import KINDS

Interval = tuple[int, int, str, str]  # (onset, offset, kind, emotion)


class EvaluateError(DataError):
    """A prediction log or truth table that cannot be scored: one line, exit status 2."""


@dataclass
class Video:
    """One scored pair: its name, the predicted and the true intervals."""

    name: str
    pred: list[Interval]
    truth: list[Interval]


def _warn(message: str) -> None:
    print(f"evaluate: warning: {message}", file=sys.stderr)


def _frame(line: dict[str, Any], key: str, fps: float | None) -> int:
    # Frames are what the truth uses; seconds × fps is the fallback for a log without them.
    value = line.get(f"{key}_frame")
    if value is None and fps is not None and isinstance(line.get(f"{key}_s"), int | float):
        return round(line[f"{key}_s"] * fps)
    # bool is an int subclass: a JSON true must not pass as frame 1.
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{key}_frame is {value!r}, expected an integer frame index")
    return value


def _parse_expression(line: dict[str, Any], fps: float | None) -> Interval:
    kind = line.get("kind")
    if kind not in KINDS:
        raise ValueError(f"kind {kind!r} not in {KINDS}")
    onset, offset = _frame(line, "onset", fps), _frame(line, "offset", fps)
    if offset < onset:
        raise ValueError(f"offset_frame {offset} before onset_frame {onset}")
    emotion = line.get("emotion")
    if not isinstance(emotion, str):
        raise ValueError(f"emotion is {emotion!r}, expected a string")
    return onset, offset, kind, emotion


def read_pred(path: Path, fps: float | None = None) -> list[Interval]:
    """Expression intervals of one log; malformed lines and a torn last line (a writer killed
    mid-line) are warned about and skipped.

    A log that a rerun appended to holds several sessions, each a full pass over the video:
    only the last session is scored, since summing them would count every expression twice.
    """
    by_session: dict[Any, list[tuple[Interval, str]]] = {}
    log_fps: float | None = None
    try:
        lines = read_whole_lines(path, warn=_warn)  # a torn last line: one warning, skipped
    except (OSError, UnicodeDecodeError) as e:
        raise EvaluateError(f"cannot read {path}: {e}") from None
    for number, text in lines:
        if not text.strip():
            continue
        try:
            line = json.loads(text)
            if not isinstance(line, dict):
                raise ValueError("not a JSON object")
            if line.get("type") == "status":
                # The started line gives the stream's fps, for logs that only carry seconds.
                if isinstance(line.get("fps"), int | float) and line.get("status") == "started":
                    log_fps = float(line["fps"])
                continue
            if line.get("type") == "blink":  # a blink is never an expression
                continue
            if line.get("type") != "expression":
                raise ValueError(f"unknown type {line.get('type')!r}")
            interval = _parse_expression(line, fps if fps is not None else log_fps)
        except ValueError as e:  # json.JSONDecodeError is a ValueError
            _warn(f"{path}:{number}: skipped malformed line: {e}")
            continue
        by_session.setdefault(line.get("session"), []).append((interval, str(line.get("stream"))))
    if not by_session:
        return []
    if len(by_session) > 1:
        _warn(f"{path}: {len(by_session)} sessions; scoring only the last one")
    events = list(by_session.values())[-1]  # dicts keep insertion order: the last session
    streams = sorted({stream for _, stream in events})
    if len(streams) > 1:
        raise EvaluateError(f"{path}: streams {streams} in one session; write one log per video")
    return [interval for interval, _ in events]


def read_truth(path: Path) -> list[Interval]:
    """Micro and macro truths of one CSV; blinks are dropped (not spotting targets).

    A malformed row is warned about with its line number and skipped, the good rows are
    scored; a file whose rows are all malformed (or without the columns) is an EvaluateError.
    A header with no row is a video without expressions.
    """
    try:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = {"onset", "offset", "kind", "emotion"} - set(reader.fieldnames or ())
            if missing:
                raise EvaluateError(f"{path}:1: missing column(s) {sorted(missing)}")
            truth, usable, bad = [], 0, 0
            for row in reader:
                try:
                    interval = _truth_row(row)
                except ValueError as e:
                    bad += 1
                    _warn(f"{path}:{reader.line_num}: skipped malformed truth row: {e}")
                    continue
                usable += 1
                if interval[2] != "blink":
                    truth.append(interval)
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise EvaluateError(f"cannot read {path}: {e}") from None
    if bad and not usable:
        raise EvaluateError(f"{path}: none of its {bad} truth row(s) is usable")
    return truth


def _truth_row(row: dict[str, Any]) -> Interval:
    """(onset, offset, kind, emotion) of one CSV row; ValueError says what is wrong."""
    try:
        onset, offset = int(row["onset"]), int(row["offset"])
    except (TypeError, ValueError):  # TypeError: a short row leaves the column None
        raise ValueError(
            f"onset/offset {row['onset']!r}, {row['offset']!r} are not integers"
        ) from None
    kind, emotion = row["kind"], row["emotion"]
    if kind != "blink" and kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}")
    if not 0 <= onset <= offset:
        raise ValueError(f"frames {onset}..{offset} are not 0 <= onset <= offset")
    return onset, offset, kind, emotion or ""


def pair_paths(pred: Path, truth: Path) -> list[tuple[str, Path, Path]]:
    """(name, log, csv) pairs: two files, or two folders matched by stem."""
    for path, what in ((pred, "--pred"), (truth, "--truth")):
        if not path.exists():
            raise EvaluateError(f"{what} {path} does not exist")
    if pred.is_file() and truth.is_file():
        return [(truth.stem, pred, truth)]
    if not (pred.is_dir() and truth.is_dir()):
        raise EvaluateError("--pred and --truth must both be files or both be folders")
    logs = {p.stem: p for p in sorted(pred.glob("*.jsonl"))}
    csvs = {p.stem: p for p in sorted(truth.glob("*.csv"))}
    for stem in sorted(logs.keys() - csvs.keys()):
        _warn(f"no truth CSV for {logs[stem]}")
    for stem in sorted(csvs.keys() - logs.keys()):
        _warn(f"no event log for {csvs[stem]}")
    pairs = [(stem, logs[stem], csvs[stem]) for stem in sorted(logs.keys() & csvs.keys())]
    if not pairs:
        raise EvaluateError(f"no *.jsonl in {pred} matches a *.csv in {truth} by file stem")
    return pairs


def score(videos: Sequence[Video], iou: float = 0.5) -> dict[str, Any]:
    """Spotting report by kind plus recognition over the matched micro-expressions."""
    spotting = spotting_report(
        [VideoIntervals([v[:3] for v in x.pred], [v[:3] for v in x.truth]) for x in videos], iou
    )
    y_true: list[str] = []
    y_pred: list[str] = []
    for video in videos:
        pred = [v for v in video.pred if v[2] == "micro"]
        truth = [v for v in video.truth if v[2] == "micro"]
        spans = ([v[:2] for v in pred], [v[:2] for v in truth])
        for i, j in spotting_matches(*spans, iou):
            y_true.append(truth[j][3])
            y_pred.append(pred[i][3])
    rec_uf1 = uf1(y_true, y_pred)
    recognition = {
        "matched": len(y_true),
        "uf1": rec_uf1,
        "uar": uar(y_true, y_pred),
        # Micro spotting F1 × micro UF1: recognition is scored on micro TPs only.
        "strs": strs(spotting["micro"]["f1"], rec_uf1),
    }
    return {"videos": len(videos), "iou": iou, "spotting": spotting, "recognition": recognition}


def markdown_table(result: dict[str, Any]) -> str:
    """One table: spotting rows for each kind, recognition rows in the micro column."""
    spot, rec = result["spotting"], result["recognition"]
    columns = (*KINDS, "overall")
    rows = [
        f"| {result['videos']} video(s), IoU ≥ {result['iou']:g} | " + " | ".join(columns) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    for key in ("tp", "fp", "fn"):
        rows.append(f"| {key.upper()} | " + " | ".join(str(spot[c][key]) for c in columns) + " |")
    for key in ("precision", "recall", "f1"):
        rows.append(f"| {key} | " + " | ".join(f"{spot[c][key]:.4f}" for c in columns) + " |")
    rows.append(f"| matched (recognition) | {rec['matched']} | – | – |")
    for key in ("uf1", "uar", "strs"):
        rows.append(f"| {key.upper()} | {rec[key]:.4f} | – | – |")
    return "\n".join(rows)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m engines.eval.evaluate",
        description=(
            "Score mexlive me-events/v1 logs against synthetic ground-truth CSVs (MEGC): "
            "spotting precision/recall/F1 for micro, macro and overall (maximum one-to-one "
            "IoU matching, counts summed over videos), and UF1/UAR/STRS over the correctly "
            "spotted micro-expressions. Blinks in the truth are ignored; malformed log lines "
            "and truth rows are reported with their line number and skipped. Exit status 2 on "
            "bad input (a truth file without one usable row among its rows included)."
        ),
    )
    parser.add_argument(
        "--pred", required=True, type=Path, help="event log (.jsonl) or folder of *.jsonl"
    )
    parser.add_argument(
        "--truth",
        required=True,
        type=Path,
        help="truth CSV or folder of *.csv, paired with --pred folders by file stem",
    )
    parser.add_argument(
        "--iou", type=float, default=0.5, help="IoU needed for a match (default 0.5, MEGC)"
    )
    parser.add_argument(
        "--fps",
        type=float,
        help="frame rate for log lines without *_frame fields (default: the log's started line)",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON object, not a table")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if not 0.0 < args.iou <= 1.0:
            raise BadInputError(f"--iou must be in (0, 1], got {args.iou}")
        if args.fps is not None and args.fps <= 0:
            raise BadInputError(f"--fps must be positive, got {args.fps}")
        videos = [
            Video(name, read_pred(log, args.fps), read_truth(truth))
            for name, log, truth in pair_paths(args.pred, args.truth)
        ]
        result = score(videos, args.iou)
    except MexliveError as exc:
        return report_error(exc, "evaluate")
    print(json.dumps(result, indent=2) if args.json else markdown_table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
