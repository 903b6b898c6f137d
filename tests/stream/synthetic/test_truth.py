"""The truth CSV reader on hand-edited tables: bad rows named by line and skipped."""

from __future__ import annotations

from pathlib import Path

import pytest

from stream.errors import MexliveError
from stream.synthetic.truth import CSV_FIELDS, TruthEvent, read_truth_csv

HEADER = ",".join(CSV_FIELDS)
GOOD = "10,14,20,micro,positive,6+12,2.5,48+54"


@pytest.mark.parametrize(
    "bad_row, why",
    [
        ("ten,14,20,micro,positive,6+12,2.5,48", "invalid literal"),  # a frame that is not a number
        ("10,14,20,mikro,positive,6+12,2.5,48", "not micro, macro or blink"),  # a misspelt kind
        ("10,24,20,micro,positive,6+12,2.5,48", "0 <= onset <= apex <= offset"),  # apex > offset
        ("10,14,20", "3 fields, expected 8"),  # a row cut short
        ("10,14,20,micro,positive,6+x,2.5,48", "invalid literal"),  # a bad action unit
    ],
)
def test_a_bad_row_is_named_by_line_and_the_good_rows_kept(tmp_path: Path, bad_row, why):
    path = tmp_path / "truth.csv"
    path.write_text("\n".join([HEADER, GOOD, bad_row, GOOD.replace("10,14,20", "40,44,50")]))
    warnings: list[str] = []
    events = read_truth_csv(path, warn=warnings.append)
    assert [(e.onset, e.apex, e.offset) for e in events] == [(10, 14, 20), (40, 44, 50)]
    assert events[0] == TruthEvent(10, 14, 20, "micro", "positive", (6, 12), 2.5, (48, 54))
    (warning,) = warnings
    assert warning.startswith(f"{path}: line 3: skipped") and why in warning


def test_warnings_go_to_stderr_by_default(tmp_path: Path, capsys):
    path = tmp_path / "truth.csv"
    path.write_text("\n".join([HEADER, GOOD, "x,y,z,micro,positive,,1.0,"]))
    assert len(read_truth_csv(path)) == 1
    assert capsys.readouterr().err.strip() == (
        f"warning: {path}: line 3: skipped: invalid literal for int() with base 10: 'x'"
    )


@pytest.mark.parametrize(
    "lines, message",
    [
        ([HEADER, "x,1,2,micro,positive,,1.0,", "3,2,1,micro,positive,,1.0,"], "none of its 2"),
        (["onset,apex,offset", "1,2,3"], "line 1: missing column(s) kind"),  # not our table
    ],
)
def test_a_file_without_a_usable_row_is_an_error(tmp_path: Path, lines, message):
    path = tmp_path / "truth.csv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(MexliveError, match=r"truth\.csv") as info:
        read_truth_csv(path, warn=lambda message: None)
    assert message in str(info.value)


def test_a_header_alone_is_a_clip_without_events(tmp_path: Path):
    path = tmp_path / "truth.csv"
    path.write_text(HEADER + "\n")
    assert read_truth_csv(path) == []
