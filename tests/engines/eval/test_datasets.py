"""Dataset readers against small fake trees that mimic each published layout.

Each fake annotation table uses the real column names (and the real title rows / missing
header where the dataset has them) and carries exactly one bad row, so that the tests can
check the bad row is reported with its line number while the rest are kept.
"""

from __future__ import annotations

import importlib.machinery
import subprocess
import sys
import types
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from engines.eval import layouts as dataset_layouts
from engines.eval.datasets import (
    Annotation,
    DatasetError,
    clip_frames,
    clip_video,
    loso_splits,
    main,
    read_casme2,
    read_casme3,
    read_casme_sq,
    read_samm,
    read_samm_lv,
)
from tests.helpers import REPO

TINY = np.full((8, 8, 3), 128, np.uint8)


def frames(folder: Path, names: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        cv2.imwrite(str(folder / name), TINY)


def table(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def casme2(tmp: Path) -> tuple[Path, Path]:
    root = tmp / "CASME2_RAW_selected"
    frames(root / "sub01" / "EP02_01f", [f"img{n}.jpg" for n in range(1, 13)])
    frames(root / "sub02" / "EP01_11f", [f"img{n}.jpg" for n in range(3, 9)])
    csv = table(
        tmp / "CASME2-coding-20140508.csv",
        [
            "Subject,Filename,Unnamed: 2,OnsetFrame,ApexFrame,OffsetFrame,Unnamed: 6,Action Units,Estimated Emotion",  # noqa: E501
            "1,EP02_01f,,2,4,11,,12,happiness",
            "1,EP03_02,,1,/,5,,4,others",  # apex '/': kept without an apex
            "2,EP01_11f,,3,5,8,,4+7,disgust",
            "2,EP19_06f,,x,5,8,,4,repression",  # bad: onset is not a number
        ],
    )
    return root, csv


def samm(tmp: Path) -> tuple[Path, Path]:
    root = tmp / "SAMM"
    frames(root / "006" / "006_1_2", [f"006_0{n}.jpg" for n in range(5560, 5570)])
    frames(root / "007" / "007_3_1", [f"007_0{n}.jpg" for n in range(1000, 1005)])
    header = "Subject,Filename,Inducement Code,Onset Frame,Apex Frame,Offset Frame,Duration,Type,Action Units,Notes,Estimated Emotion,Objective Classes"  # noqa: E501
    csv = table(
        tmp / "SAMM_Micro_FACS_Codes_v2.csv",
        [
            "SAMM Micro-Movement FACS codes,,,",
            "Version 2,,,",
            "",
            header,
            "6,006_1_2,1,5562,5564,5566,5,Micro,4+7,,Anger,3",
            "7,007_3_1,3,1000,1002,1004,5,Micro,12,,Happiness,1",
            "7,007_5_2,5,2000,2003,2009,10,Micro,14,,Other,7",
            "8,008_1_1,1,100,,abc,,Micro,4,,Fear,4",  # bad: offset is not a number
        ],
    )
    return root, csv


def samm_lv(tmp: Path) -> tuple[Path, Path]:
    root = tmp / "SAMMLV"
    frames(root / "SAMM_longvideos" / "006_1", [f"006_1_{n:04d}.jpg" for n in range(1, 21)])
    frames(root / "SAMM_longvideos" / "007_6", [f"007_6_{n:05d}.jpg" for n in range(1, 11)])
    title = [f"SAMM Long Videos release note {i},,," for i in range(1, 10)]
    csv = table(
        tmp / "SAMM_LongVideos_V2_Release.csv",
        [
            *title,
            "Subject,Filename,Inducement Code,Onset,Apex,Offset,Duration,Type,Action Units,Notes",
            "6,006_1_2,1,3,5,8,6,Micro - 1/2,R12,",
            "6,006_1_3,1,10,12,18,9,Macro,6+12,",
            "7,007_6_1,6,0,5,9,,Macro,4,onset not coded",  # onset 0: apex stands in, kept
            "7,007_6_2,6,2,3,4,3,Blink,45,",  # bad: neither micro nor macro
        ],
    )
    return root, csv


def casme_sq(tmp: Path) -> tuple[Path, Path]:
    root = tmp / "CASME_sq"
    frames(
        root / "rawpic" / "s15" / "15_0101disgustingteeth", [f"img{n}.jpg" for n in range(1, 31)]
    )
    frames(root / "rawpic" / "s19" / "23_0502funnyerrors", [f"img{n}.jpg" for n in range(1, 6)])
    for video in ("s15/15_0101disgustingteeth.avi", "s16/16_0502funnyinnovations.avi"):
        (root / "rawvideo" / video).parent.mkdir(parents=True, exist_ok=True)
        (root / "rawvideo" / video).write_bytes(b"")
    csv = table(
        tmp / "CAS(ME)^2code_final.csv",
        [  # sheet 1 has no header row
            "1,disgust1_1,5,8,12,4+9,negative,micro-expression,disgust",
            "1,disgust1_2,20,25,0,4,negative,macro-expression,",  # offset 0: apex stands in
            "2,happy1_1,3,6,9,12,positive,macro-expression,happy",
            "7,happy1_1,2,3,4,12,surprise,micro-expression,",  # participant 7 is s23, filed in s19
            "99,anger1_1,1,2,3,4,negative,micro-expression,",  # bad: no participant 99
        ],
    )
    return root, csv


def casme3(tmp: Path) -> tuple[Path, Path]:
    root = tmp / "CASME3"
    part_a = root / "part_A" / "data" / "part_A"
    frames(part_a / "spNO.1" / "a" / "color", [f"{n}.jpg" for n in range(0, 21)])
    frames(part_a / "spNO.1" / "a" / "depth", [f"{n}.png" for n in range(0, 21)])
    frames(part_a / "spNO.2" / "b" / "color", [f"{n}.jpg" for n in range(100, 110)])
    csv = table(
        tmp / "cas(me)3_part_A_ME_label_JpgIndex_v2.csv",
        [
            "Subject,Filename,Onset,Apex,Offset,count,AU,Objective class,emotion",
            "spNO.1,A,0,3,6,7,L12,1,happy",
            "spNO.1,a,10,12,15,6,4,7,Others",
            "spNO.2,b,101,104,108,8,4+7,2,anger",
            "spNO.2,c,5,,,0,4,2,sad",  # bad: no offset and no apex
        ],
    )
    return root, csv


CASES = {
    # name: (builder, reader, annotations, subjects, clips, micro, macro, bad line, kept notes)
    "casme2": (casme2, read_casme2, 3, 2, 3, 3, 0, 5, 1),  # note: apex '/'
    "samm": (samm, read_samm, 3, 2, 3, 3, 0, 8, 0),  # title rows above the header
    "samm-lv": (samm_lv, read_samm_lv, 3, 2, 2, 1, 2, 14, 1),  # header on line 10
    "casme-sq": (casme_sq, read_casme_sq, 4, 3, 3, 2, 2, 5, 1),  # no header at all
    "casme3": (casme3, read_casme3, 3, 2, 2, 3, 0, 5, 0),  # Filename 'A' lower-cased
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_counts_and_bad_rows(tmp_path: Path, name: str) -> None:
    build, read, n, subjects, clips, micro, macro, bad_line, notes = CASES[name]
    anns, problems = read(*build(tmp_path))
    assert len(anns) == n
    assert len({a.subject for a in anns}) == subjects
    assert len({(a.subject, a.clip) for a in anns}) == clips
    assert Counter(a.kind for a in anns) == Counter(micro=micro, macro=macro) - Counter()
    skipped = [p for p in problems if p.skipped]
    assert [p.line for p in skipped] == [bad_line]
    assert f"line {bad_line}:" in str(skipped[0])
    assert len([p for p in problems if not p.skipped]) == notes
    assert bad_line not in {a.source_line for a in anns}  # the bad row is out, the rest in


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        # CASME II: happiness → positive, disgust → negative, others kept with no class
        ("casme2", [("happiness", "positive"), ("others", None), ("disgust", "negative")]),
        # SAMM: anger is negative; "Other" has no class
        ("samm", [("Anger", "negative"), ("Happiness", "positive"), ("Other", None)]),
        # SAMM-LV has no emotion column: every row kept for spotting, none for recognition
        ("samm-lv", [("", None), ("", None), ("", None)]),
        # CAS(ME)^2 writes the composite classes itself
        (
            "casme-sq",
            [
                ("negative", "negative"),
                ("negative", "negative"),
                ("positive", "positive"),
                ("surprise", "surprise"),
            ],
        ),
        # CAS(ME)^3: happy → positive, others → none, anger → negative
        ("casme3", [("happy", "positive"), ("Others", None), ("anger", "negative")]),
    ],
)
def test_emotion_mapping(tmp_path: Path, name: str, expected: list) -> None:
    build, read = CASES[name][:2]
    anns, _ = read(*build(tmp_path))
    assert [(a.emotion_raw, a.emotion) for a in anns] == expected


def test_emotion_mapping_can_be_overridden(tmp_path: Path) -> None:
    # baselines that drop CASME II's fear/sadness pass their own table
    table = {"happiness": "positive", "disgust": None, "others": None}
    anns, _ = read_casme2(*casme2(tmp_path), emotions=table)
    assert [a.emotion for a in anns] == ["positive", None, None]


def test_fields_and_repairs(tmp_path: Path) -> None:
    anns, _ = read_casme2(*casme2(tmp_path))
    assert anns[0] == Annotation(
        "casme2", "sub01", "EP02_01f", 2, 4, 11, "micro", "happiness", "positive", "12", 2
    )
    assert anns[1].apex is None
    sq, _ = read_casme_sq(*casme_sq(tmp_path))
    assert (sq[0].subject, sq[0].clip, sq[0].aus) == ("s15", "15_0101", "4+9")
    assert (sq[1].onset, sq[1].offset) == (20, 25)  # offset 0 → the apex
    assert (sq[3].subject, sq[3].clip) == ("s23", "23_0502")
    lv, _ = read_samm_lv(*samm_lv(tmp_path))
    assert (lv[2].subject, lv[2].clip, lv[2].onset, lv[2].offset) == ("007", "007_6", 5, 9)


@pytest.mark.parametrize(
    ("name", "index", "first", "count"),
    [
        ("casme2", 0, "img2.jpg", 10),  # img2..img11 in number order, not name order
        ("samm", 0, "006_05562.jpg", 5),
        ("samm-lv", 1, "006_1_0010.jpg", 9),
        ("casme-sq", 0, "img5.jpg", 8),
        ("casme-sq", 3, "img2.jpg", 3),  # 23_0502 found although it sits in s19
        ("casme3", 0, "0.jpg", 7),  # frame 0 is a real frame; depth/ is not picked up
    ],
)
def test_clip_frames(tmp_path: Path, name: str, index: int, first: str, count: int) -> None:
    build, read = CASES[name][:2]
    root, csv = build(tmp_path)
    anns, _ = read(root, csv)
    found = clip_frames(root, anns[index])
    assert found[0].name == first
    assert len(found) == count
    numbers = [int("".join(c for c in p.stem.split("_")[-1] if c.isdigit())) for p in found]
    assert numbers == sorted(numbers)


def test_whole_video_and_video_only_clips(tmp_path: Path) -> None:
    root, csv = samm_lv(tmp_path)
    anns, _ = read_samm_lv(root, csv)
    assert len(clip_frames(root, anns[0], whole=True)) == 20
    root, csv = casme_sq(tmp_path)
    anns, _ = read_casme_sq(root, csv)
    assert clip_video(root, anns[0]).name == "15_0101disgustingteeth.avi"
    with pytest.raises(DatasetError, match="only the video"):
        clip_frames(root, anns[2])  # s16 ships here as rawvideo only


def test_casme3_me_clip_layout(tmp_path: Path) -> None:
    root, csv = casme3(tmp_path)
    frames(
        tmp_path / "clips" / "Part_A_ME_clip" / "frame" / "spNO.2_b_101",
        [f"{n}.jpg" for n in range(101, 109)],
    )
    anns, _ = read_casme3(root, csv)
    assert len(clip_frames(tmp_path / "clips", anns[2])) == 8


@pytest.mark.parametrize("names", [["casme2"], sorted(CASES)])
def test_loso_splits_disjoint_and_covering(tmp_path: Path, names: list[str]) -> None:
    anns: list[Annotation] = []
    for name in names:
        build, read = CASES[name][:2]
        anns += read(*build(tmp_path / name))[0]
    folds = loso_splits(anns)
    mixed = len(names) > 1
    key = (lambda a: f"{a.dataset}:{a.subject}") if mixed else (lambda a: a.subject)
    tested: list[int] = []
    for subject, train, test in folds:
        assert set(train).isdisjoint(test)
        assert sorted(train + test) == list(range(len(anns)))
        assert {key(anns[i]) for i in test} == {subject}
        assert all(key(anns[i]) != subject for i in train)
        tested += test
    assert sorted(tested) == list(range(len(anns)))  # every annotation is tested once
    assert len(folds) == len({(a.dataset, a.subject) for a in anns})


def test_folder_errors(tmp_path: Path) -> None:
    _, csv = casme2(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="empty"):
        read_casme2(tmp_path / "empty", csv)
    with pytest.raises(DatasetError, match="not found"):
        read_casme2(tmp_path / "nowhere", csv)


def test_annotation_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root, _ = casme2(tmp_path)
    with pytest.raises(DatasetError, match="not found"):
        read_casme2(root, tmp_path / "missing.csv")
    with pytest.raises(DatasetError, match="no header row with the columns Subject"):
        read_casme2(root, table(tmp_path / "other.csv", ["a,b,c", "1,2,3"]))
    real = dataset_layouts.importlib.util.find_spec
    monkeypatch.setattr(
        dataset_layouts.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "openpyxl" else real(name, *a),
    )
    (tmp_path / "coding.xlsx").write_bytes(b"PK")
    with pytest.raises(DatasetError, match="save the annotation sheet as CSV"):
        read_casme2(root, tmp_path / "coding.xlsx")


class FakeBook:
    """Just enough of openpyxl's read-only workbook for `read_table`."""

    def __init__(self, sheets: dict[str, list[tuple]]) -> None:
        self.sheets, self.sheetnames = sheets, list(sheets)

    def __getitem__(self, name: str) -> types.SimpleNamespace:
        return types.SimpleNamespace(iter_rows=lambda values_only: iter(self.sheets[name]))

    def close(self) -> None:
        pass


def test_xlsx_through_openpyxl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # openpyxl is optional and absent here: a stand-in checks sheet choice, Excel's float
    # frame numbers, row numbering and CAS(ME)^2's naming sheets overriding the built-in ones
    books = {
        "CAS(ME)^2code_final.xlsx": {
            "CASFEcode_final": [
                (1, "disgust1_1", 5.0, 8.0, 12.0, "4+9", "negative", "micro-expression", None),
                (2, "anger1_1", 1.0, 2.0, 3.0, "4", "negative", "macro-expression", None),
            ],
            "naming rule1": [(40, "s40", 1)],  # participant 1 is s40 in this workbook
            "naming rule2": [(101, "disgust1")],  # Excel dropped the leading zero
        },
        "SAMM_LongVideos_V2_Release.xlsx": {
            "Sheet1": [("not", "this", "sheet")],
            "FACS_Movement_Only": [
                *[(f"title {i}",) for i in range(9)],
                ("Subject", "Filename", "Inducement Code", "Onset", "Apex", "Offset", "Type"),
                (6.0, "006_1_2", 1.0, 3.0, 5.0, 8.0, "Micro - 1/2"),
            ],
        },
    }
    fake = types.ModuleType("openpyxl")
    fake.__spec__ = importlib.machinery.ModuleSpec("openpyxl", None)
    fake.load_workbook = lambda path, read_only, data_only: FakeBook(books[Path(path).name])
    monkeypatch.setitem(sys.modules, "openpyxl", fake)
    for name in books:
        (tmp_path / name).write_bytes(b"PK")  # exists; the stand-in supplies the contents
    root, _ = casme_sq(tmp_path)
    anns, problems = read_casme_sq(root, tmp_path / "CAS(ME)^2code_final.xlsx")
    assert [(a.subject, a.clip, a.onset, a.offset) for a in anns] == [("s40", "40_0101", 5, 12)]
    assert [(p.line, p.skipped) for p in problems] == [(2, True)]  # anger1 not in this table
    root, _ = samm_lv(tmp_path)
    anns, _ = read_samm_lv(root, tmp_path / "SAMM_LongVideos_V2_Release.xlsx")
    assert [(a.subject, a.clip, a.kind, a.source_line) for a in anns] == [
        ("006", "006_1", "micro", 11)
    ]


def test_cli_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root, csv = samm_lv(tmp_path)
    assert main(["samm-lv", str(root), str(csv), "--check-frames"]) == 0
    out = capsys.readouterr().out
    assert "annotations: 3  (micro 1, macro 2)" in out
    assert "line 14: type 'Blink' is neither Micro nor Macro (skipped)" in out
    assert "frames:      2/2 clips found" in out


def test_cli_errors_exit_2_without_traceback(tmp_path: Path) -> None:
    _, csv = casme2(tmp_path)
    (tmp_path / "empty").mkdir()
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "engines.eval.datasets",
            "casme2",
            str(tmp_path / "empty"),
            str(csv),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2
    assert run.stderr.strip().startswith("error: dataset folder is empty")
    assert "Traceback" not in run.stderr and len(run.stderr.strip().splitlines()) == 1
