"""`python -m engines.eval.evaluate`: hand-worked logs and truth CSVs, pairing, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engines.eval.evaluate import main

HEADER = "onset,apex,offset,kind,emotion,aus,peak_px,landmarks\n"
STARTED = {"schema": "me-events/v1", "type": "status", "status": "started", "fps": 30.0}


def expression(kind: str, onset: int, offset: int, emotion: str, session: str = "s1") -> dict:
    return {
        "schema": "me-events/v1",
        "type": "expression",
        "kind": kind,
        "onset_frame": onset,
        "apex_frame": (onset + offset) // 2,
        "offset_frame": offset,
        "emotion": emotion,
        "stream": "cam0",
        "session": session,
    }


def write_log(path: Path, lines: list[dict | str]) -> Path:
    text = [line if isinstance(line, str) else json.dumps(line) for line in lines]
    path.write_text("\n".join(text) + "\n")
    return path


def write_truth(path: Path, rows: list[tuple[int, int, str, str]]) -> Path:
    # Columns as stream/video_writers.write_truth_csv writes them; apex and the rest are filler.
    body = "".join(f"{a},{(a + b) // 2},{b},{k},{e},4+7,1.5,17+21\n" for a, b, k, e in rows)
    path.write_text(HEADER + body)
    return path


def run_json(capsys, *args: str) -> dict:
    assert main([*args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture
def clip(tmp_path: Path) -> tuple[Path, Path]:
    truth = write_truth(
        tmp_path / "clip.csv",
        [
            (10, 19, "micro", "negative"),
            (50, 55, "blink", ""),  # not a spotting target
            (100, 109, "micro", "positive"),
            (200, 249, "macro", "surprise"),
            (300, 309, "micro", "surprise"),  # never predicted: FN
        ],
    )
    log = write_log(
        tmp_path / "clip.jsonl",
        [
            STARTED,
            expression("micro", 11, 20, "negative"),  # IoU 9/11 with 10-19: TP, emotion right
            expression("micro", 100, 104, "surprise"),  # IoU 5/10 = 0.5: TP, emotion wrong
            '{"schema": "me-events/v1", "type": "expression", "kind":',  # line 4: cut short
            expression("macro", 200, 245, "surprise"),  # IoU 46/50: TP
            expression("micro", 50, 55, "negative"),  # only the blink is there: FP
            expression("macro", 400, 430, "positive"),  # FP
        ],
    )
    return log, truth


def test_single_pair_hand_worked(clip, capsys):
    # micro: TP 2, FP 1, FN 1 → P = R = F1 = 2/3
    # macro: TP 1, FP 1, FN 0 → P 1/2, R 1, F1 2/3
    # overall: TP 3, FP 2, FN 1 → P 3/5, R 3/4, F1 2/3
    # recognition on the 2 micro TPs: negative→negative, positive→surprise
    #   UF1 = (1 + 0) / 2 = 0.5, UAR = (1 + 0) / 2 = 0.5, STRS = 2/3 × 0.5 = 1/3
    log, truth = clip
    result = run_json(capsys, "--pred", str(log), "--truth", str(truth))
    spot, rec = result["spotting"], result["recognition"]
    assert [spot["micro"][k] for k in ("tp", "fp", "fn")] == [2, 1, 1]
    assert [spot["macro"][k] for k in ("tp", "fp", "fn")] == [1, 1, 0]
    assert [spot["overall"][k] for k in ("tp", "fp", "fn")] == [3, 2, 1]
    assert spot["overall"]["precision"] == pytest.approx(3 / 5)
    assert spot["overall"]["recall"] == pytest.approx(3 / 4)
    assert spot["overall"]["f1"] == pytest.approx(2 / 3)
    assert rec["matched"] == 2
    assert rec["uf1"] == pytest.approx(0.5)
    assert rec["uar"] == pytest.approx(0.5)
    assert rec["strs"] == pytest.approx(1 / 3)


def test_malformed_line_reported_and_skipped(clip, capsys):
    log, truth = clip
    assert main(["--pred", str(log), "--truth", str(truth)]) == 0
    out, err = capsys.readouterr()
    assert f"{log}:4:" in err and "skipped" in err
    assert out.startswith("| 1 video(s), IoU ≥ 0.5 | micro | macro | overall |")
    assert "| TP | 2 | 1 | 3 |" in out  # the lines after the bad one still count


def test_a_torn_last_line_is_skipped_with_one_warning(clip, capsys):
    # What a writer killed mid-line leaves: the start of an event, no newline, cut inside "é".
    log, truth = clip
    whole = run_json(capsys, "--pred", str(log), "--truth", str(truth))
    with open(log, "ab") as file:
        file.write(b'{"schema": "me-events/v1", "type": "expression", "emotion": "\xc3')
    assert main(["--pred", str(log), "--truth", str(truth), "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out) == whole  # every line before the torn one is scored as before
    # Line 8: seven whole lines (one of them malformed, warned about on its own) come first.
    assert err.count("torn last line") == 1 and f"{log}:8: skipped a torn last line" in err


def test_blinks_are_not_targets(tmp_path, capsys):
    truth = write_truth(tmp_path / "t.csv", [(50, 55, "blink", "")])
    log = write_log(tmp_path / "p.jsonl", [expression("micro", 50, 55, "negative")])
    spot = run_json(capsys, "--pred", str(log), "--truth", str(truth))["spotting"]
    # The blink is dropped, so the prediction on it is a FP and nothing is missed.
    assert [spot["overall"][k] for k in ("tp", "fp", "fn")] == [0, 1, 0]


def test_last_session_only(tmp_path, capsys):
    truth = write_truth(tmp_path / "t.csv", [(10, 19, "micro", "negative")])
    log = write_log(
        tmp_path / "p.jsonl",
        [expression("micro", 10, 19, "negative", "old"), expression("micro", 10, 19, "x", "new")],
    )
    result = run_json(capsys, "--pred", str(log), "--truth", str(truth))
    # The rerun's line alone: TP 1, FP 0; its emotion "x" is wrong.
    assert result["spotting"]["micro"]["fp"] == 0
    assert result["recognition"]["uf1"] == 0.0


def test_folders_paired_by_stem(tmp_path, capsys):
    preds, truths = tmp_path / "pred", tmp_path / "truth"
    preds.mkdir()
    truths.mkdir()
    write_log(preds / "clip_0001.jsonl", [expression("micro", 10, 19, "negative")])
    write_log(preds / "clip_0002.jsonl", [expression("macro", 0, 40, "positive")])
    write_log(preds / "clip_0009.jsonl", [expression("micro", 0, 9, "negative")])  # no truth
    write_truth(truths / "clip_0001.csv", [(10, 19, "micro", "negative")])
    write_truth(truths / "clip_0002.csv", [(100, 140, "macro", "positive")])
    write_truth(truths / "clip_0007.csv", [(0, 9, "micro", "negative")])  # no log
    assert main(["--pred", str(preds), "--truth", str(truths), "--json"]) == 0
    out, err = capsys.readouterr()
    result = json.loads(out)
    # Summed over clip_0001 (micro TP) and clip_0002 (macro FP + FN): TP 1, FP 1, FN 1.
    assert result["videos"] == 2
    assert [result["spotting"]["overall"][k] for k in ("tp", "fp", "fn")] == [1, 1, 1]
    assert "clip_0009.jsonl" in err and "clip_0007.csv" in err


def bad_input_cases(tmp_path: Path) -> dict[str, list[str]]:
    log = write_log(tmp_path / "p.jsonl", [expression("micro", 10, 19, "negative")])
    good = write_truth(tmp_path / "good.csv", [(10, 19, "micro", "negative")])
    bad = tmp_path / "bad.csv"  # no usable row: line 2 not a number, line 3 unknown kind
    bad.write_text(HEADER + "ten,14,19,micro,negative,4,1.0,\n10,14,19,mikro,negative,4,1.0,\n")
    empty_a, empty_b = tmp_path / "a", tmp_path / "b"
    empty_a.mkdir()
    empty_b.mkdir()
    return {
        "missing": ["--pred", str(tmp_path / "nope.jsonl"), "--truth", str(good)],
        "bad csv line 3": ["--pred", str(log), "--truth", str(bad)],
        "file and folder": ["--pred", str(log), "--truth", str(empty_a)],
        "no pairs": ["--pred", str(empty_a), "--truth", str(empty_b)],
    }


@pytest.mark.parametrize("case", ["missing", "bad csv line 3", "file and folder", "no pairs"])
def test_bad_input_exit_2_one_line(tmp_path, capsys, case):
    assert main(bad_input_cases(tmp_path)[case]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    *warnings, error = err.strip().splitlines()
    assert error.startswith("evaluate: error:") and "Traceback" not in err
    if case == "bad csv line 3":  # each bad row named by its line, then the one error
        assert [w.split(": ")[1] for w in warnings] == ["warning", "warning"]
        assert "bad.csv:2:" in warnings[0] and "bad.csv:3:" in warnings[1]
        assert "bad.csv" in error and "usable" in error
    else:
        assert warnings == []


@pytest.mark.parametrize(
    "bad_row, why",
    [
        ("ten,14,19,micro,negative,4,1.0,", "not integers"),  # a typo in a frame number
        ("10,14,19,mikro,negative,4,1.0,", "unknown kind"),  # a misspelt kind
        ("30,14,19,micro,negative,4,1.0,", "not 0 <= onset <= offset"),  # offset before onset
        ("10,14", "not integers"),  # a short row: no offset column
    ],
)
def test_bad_truth_rows_are_named_and_the_good_ones_scored(tmp_path, capsys, bad_row, why):
    log = write_log(tmp_path / "p.jsonl", [expression("micro", 10, 19, "negative")])
    truth = tmp_path / "t.csv"
    truth.write_text(HEADER + "10,14,19,micro,negative,4,1.0,17\n" + bad_row + "\n")
    assert main(["--pred", str(log), "--truth", str(truth), "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["spotting"]["micro"]["tp"] == 1  # line 2 was kept and matched
    (warning,) = err.strip().splitlines()
    assert f"{truth}:3:" in warning and why in warning
