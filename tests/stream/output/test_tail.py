"""``mexlive tail``: one line per event, coloured by emotion, following a rotating live log."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import threading
import time

import pytest

from stream.output.events import JsonlEventLog, StatusEvent
from stream.output.tail import DIM, EMOTION_COLOURS, LogFollower, format_event, main
from tests.helpers import REPO, expression

ANSI = "\x1b["


def as_line(event) -> str:
    return json.dumps(event.to_dict())


@pytest.mark.parametrize(
    "raw, has, style",
    [
        (
            as_line(expression(emotion="negative")),
            "micro negative conf 0.80",
            EMOTION_COLOURS["negative"],
        ),  # an expression: kind, emotion, confidence, coloured
        (
            as_line(StatusEvent("face_lost", "cam0", detail={"reason": "too_dark"})),
            'face_lost  {"reason":"too_dark"}',
            DIM,
        ),  # a status line: dim, with its details
        ("{not json", "(not JSON) {not json", DIM),  # garbage is shown, not fatal
    ],
)
def test_format_event(raw, has, style):
    coloured = format_event(raw, colour=True)
    assert has in coloured and style in coloured and coloured.endswith("\x1b[0m")
    plain = format_event(raw, colour=False)
    assert has in plain and ANSI not in plain


def test_whole_log_without_follow(tmp_path):
    path = tmp_path / "events.jsonl"
    with JsonlEventLog(path) as log:
        log.write(StatusEvent("started", "cam0"))
        for seq in range(5):
            log.write(expression(seq=seq, emotion="surprise"))
    out = io.StringIO()
    assert main([str(path)], out=out) == 0
    lines = out.getvalue().splitlines()
    assert len(lines) == 6 and "started" in lines[0] and all("surprise" in x for x in lines[1:])
    out = io.StringIO()
    main([str(path), "-n", "2"], out=out)
    assert len(out.getvalue().splitlines()) == 2


def test_missing_log_exits_2(tmp_path, capsys):
    assert main([str(tmp_path / "nope.jsonl")]) == 2
    assert "no such log" in capsys.readouterr().err


def test_follower_reads_on_across_rotations_and_waits_for_whole_lines(tmp_path):
    path = tmp_path / "events.jsonl"
    log = JsonlEventLog(path, max_bytes=3000, backups=50)  # ~4 lines (650 bytes) per file
    seen: list[str | None] = []
    follower = LogFollower(path, poll_s=0.01)
    lines = follower.lines(follow=True)

    def read(n: int) -> None:
        while len([x for x in seen if x]) < n:
            seen.append(next(lines))

    for seq in range(3):
        log.write(expression(seq=seq))
    read(3)
    with open(path, "a") as raw:  # a writer mid-line: nothing is yielded until it ends
        raw.write('{"schema":"me-events/v1","type":"status"')
    reader = threading.Thread(target=read, args=(4,), daemon=True)
    reader.start()
    time.sleep(0.2)
    assert len([x for x in seen if x]) == 3
    with open(path, "a") as raw:
        raw.write(',"status":"started","stream":"cam0"}\n')
    reader.join(5)
    for seq in range(3, 40):
        log.write(expression(seq=seq))
    read(4 + 37)
    log.close()
    assert log.rotations >= 5
    decoded = [json.loads(x) for x in seen if x]
    seqs = [d.get("seq") for d in decoded if d["type"] == "expression"]
    assert seqs == list(range(40))  # every line once, in order, across the rotations
    assert seen.count(None) == 1  # the backlog ended once


@pytest.mark.slow
def test_tail_follow_subcommand_in_a_subprocess(tmp_path):
    path = tmp_path / "events.jsonl"
    log = JsonlEventLog(path, max_bytes=9000, backups=20)  # ~14 lines (640 bytes) per file
    for seq in range(12):
        log.write(expression(seq=seq, onset_frame=seq))  # --follow starts with the last 10
    tail = subprocess.Popen(
        [
            sys.executable,
            str(REPO / "run_live.py"),
            "tail",
            str(path),
            "--follow",
            "--color",
            "always",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        got = [tail.stdout.readline() for _ in range(10)]
        for seq in range(12, 32):
            log.write(expression(seq=seq, onset_frame=seq, emotion="positive"))
        got += [tail.stdout.readline() for _ in range(20)]
    finally:
        log.close()
        tail.terminate()
        tail.communicate(timeout=10)
    assert log.rotations >= 2
    onsets = [int(line.split("frames ")[1].split("-")[0]) for line in got]
    assert onsets == list(range(2, 32))  # the backlog's last 10, then each new line once
    assert all(EMOTION_COLOURS["positive"] in line for line in got[10:])


def test_lines_written_just_before_a_rotation_are_not_lost(tmp_path):
    # The writer appends and then rotates between the follower's last read and its rotation
    # check (seen under load: the subprocess test hung on a lost line).
    path = tmp_path / "events.jsonl"
    path.write_text("a\n")
    lines = LogFollower(path, sleep=lambda s: None).lines(follow=True)
    assert next(lines) == "a" and next(lines) is None  # backlog read, now following
    with open(path, "a") as f:
        f.write("b\n")
    path.rename(tmp_path / "events.jsonl.1")
    path.write_text("c\n")
    assert [next(lines), next(lines)] == ["b", "c"]


TORN = b'{"schema":"me-events/v1","type":"expression","emotion":"n'  # a writer killed mid-line


def test_a_torn_last_line_is_skipped_with_one_warning(tmp_path, capsys):
    path = tmp_path / "events.jsonl"
    with JsonlEventLog(path) as log:
        for seq in range(3):
            log.write(expression(seq=seq, emotion="surprise"))
    whole = io.StringIO()
    assert main([str(path)], out=whole) == 0
    with open(path, "ab") as raw:
        raw.write(TORN)
    out = io.StringIO()
    assert main([str(path)], out=out) == 0
    err = capsys.readouterr().err
    assert out.getvalue() == whole.getvalue()  # the three whole lines, nothing of the torn one
    assert err.count("warning") == 1 and f"{path}:4: skipped a torn last line" in err


def test_following_a_torn_line_that_the_next_session_cuts_off(tmp_path):
    path = tmp_path / "events.jsonl"
    with JsonlEventLog(path, session="a") as log:
        log.write(expression(seq=0))
    with open(path, "ab") as raw:
        raw.write(TORN)
    warnings: list[str] = []
    lines = LogFollower(path, poll_s=0.01, warn=warnings.append).lines(follow=True)
    assert json.loads(next(lines))["seq"] == 0
    assert next(lines) is None and warnings == []  # while following, it may yet be ended
    with JsonlEventLog(path, session="b") as log:  # cuts the torn line off, then appends
        log.write(expression(seq=1))
        log.write(expression(seq=2))
    later = [json.loads(next(lines)) for _ in range(2)]
    assert [(x["session"], x["seq"]) for x in later] == [("b", 1), ("b", 2)]  # no line twice
    assert len(warnings) == 1 and "torn last line" in warnings[0]
