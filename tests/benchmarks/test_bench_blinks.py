"""The blink benchmark: its hand labels parse, its overlap scoring gives hand-worked numbers,
and bad input exits 2 with one line. No video is decoded here."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest

from benchmarks.bench_blinks import (
    HELD_OUT_LABELS,
    LABELS,
    main,
    rates,
    read_labels,
    runs_of,
    score,
)
from engines.errors import EXIT_BAD_INPUT, DataError


@pytest.mark.parametrize("path", [LABELS, HELD_OUT_LABELS])
def test_label_files_parse(path: Path) -> None:
    labels = read_labels(path)
    assert len(labels) >= 5
    assert sum(len(runs) for runs in labels.values()) >= 20
    for runs in labels.values():
        assert all(0 <= a <= b for a, b in runs)
        assert all(b < c for (_, b), (c, _) in pairwise(runs)), runs  # sorted, disjoint


def test_the_held_out_labels_name_other_clips() -> None:
    assert any(not runs for runs in read_labels(LABELS).values())  # a clip labelled "no blink"
    assert not set(read_labels(LABELS)) & set(read_labels(HELD_OUT_LABELS))


def test_overlap_scoring_hand_worked() -> None:
    # Truth (10,14) is overlapped by detection (11,13); truth (40,44) is missed; detection
    # (60,62) overlaps nothing. Frames: truth 10, detected 6, both 3 (11, 12, 13).
    counts = score([(10, 14), (40, 44)], [(11, 13), (60, 62)], n_frames=100)
    assert counts["found"] == 1 and counts["right"] == 1
    assert (counts["t_frames"], counts["d_frames"], counts["both"]) == (10, 6, 3)
    r = rates(counts)
    assert r["event_recall"] == pytest.approx(0.5)
    assert r["event_precision"] == pytest.approx(0.5)
    assert r["frame_recall"] == pytest.approx(0.3)
    assert r["frame_precision"] == pytest.approx(0.5)


def test_edge_cases_of_scoring() -> None:
    # Touching at one frame counts; no truth and no detection leaves the rates undefined.
    assert score([(5, 8)], [(8, 9)], 20)["found"] == 1
    assert all(np.isnan(v) for v in rates(score([], [], 20)).values())
    flags = np.zeros(12, bool)
    flags[[0, 1, 5, 11]] = True
    assert runs_of(flags) == [(0, 1), (5, 5), (11, 11)]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("clip,start_frame,end_frame\nvr_1.mp4,9,3\n", "bad range"),
        ("clip,start_frame,end_frame\nvr_1.mp4,a,3\n", "integers"),
        ("clip,start_frame,end_frame\nvr_1.mp4,-1,-1\nvr_1.mp4,3,4\n", "no blink"),
        ("# only a comment\nclip,start_frame,end_frame\n", "no label row"),
    ],
)
def test_bad_label_files(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "blinks.csv"
    path.write_text(text)
    with pytest.raises(DataError, match=message):
        read_labels(path)


def test_missing_labels_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["--labels", str(tmp_path / "none.csv")]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err.strip()
    assert "no such labels file" in err and len(err.splitlines()) == 1


def test_missing_clip_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "blinks.csv"
    path.write_text("clip,start_frame,end_frame\nno_such_clip.mp4,1,2\n")
    assert main(["--labels", str(path)]) == EXIT_BAD_INPUT
    assert "no such clip" in capsys.readouterr().err
