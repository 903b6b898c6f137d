"""The me-events/v1 log: schema, one flushed line per event, sessions, bad paths."""

from __future__ import annotations

import json

import pytest

from stream.errors import MexliveError
from stream.output.events import (
    EventBus,
    JsonlEventLog,
    StatusEvent,
    validate_event,
)
from tests.helpers import expression


def test_each_line_is_flushed_and_valid(tmp_path):
    path = tmp_path / "events.jsonl"
    log = JsonlEventLog(path)
    log.write(StatusEvent("started", stream="cam0", detail={"source": "synthetic:0"}))
    # Readable by another reader before the log is closed: `tail -f` sees it at once.
    first = json.loads(path.read_text().splitlines()[0])
    assert validate_event(first) == [] and first["status"] == "started"
    log.write(expression())
    log.close()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [validate_event(line) for line in lines] == [[], []]
    assert lines[1]["duration_ms"] == pytest.approx(367.0)
    assert lines[0]["session"] == lines[1]["session"]


def test_restart_appends_with_a_new_session(tmp_path):
    path = tmp_path / "events.jsonl"
    for _ in range(2):
        with JsonlEventLog(path) as log:
            log.write(StatusEvent("started", stream="cam0"))
    sessions = [json.loads(line)["session"] for line in path.read_text().splitlines()]
    assert len(sessions) == 2 and sessions[0] != sessions[1]


def test_unwritable_path_fails_at_start(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(MexliveError, match="cannot write event log"):
        JsonlEventLog(blocker / "events.jsonl")


@pytest.mark.parametrize(
    "line, problem",
    [
        ({"type": "status", "status": "started"}, "schema"),  # no schema tag
        (
            {"schema": "me-events/v1", "type": "bogus", "t_wall": "", "t_mono_ns": 0, "stream": ""},
            "unknown type",
        ),  # wrong type
        ({**expression().to_dict(), "emotion": "anger"}, "emotion"),  # not a composite class
        ({**expression().to_dict(), "kind": "meso"}, "kind"),  # neither micro nor macro
    ],
)
def test_validate_event_finds_problems(line, problem):
    assert any(problem in p for p in validate_event(line))


def test_bus_counts_by_status_and_kind():
    bus = EventBus()
    bus.emit(StatusEvent("started", stream="cam0"))
    bus.emit(expression())
    bus.emit(expression(kind="macro"))
    assert bus.counts == {"started": 1, "expression:micro": 1, "expression:macro": 1}
    assert bus.expressions == 2


def read_lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_rotation_keeps_whole_lines_and_the_session(tmp_path):
    path = tmp_path / "events.jsonl"
    line_bytes = len(json.dumps({**expression().to_dict(), "session": "x" * 12}).encode()) + 1
    log = JsonlEventLog(path, max_bytes=3 * line_bytes + 10, backups=2)  # 3 lines per file
    for seq in range(20):
        log.write(expression(seq=seq))
    log.close()
    files = [path, tmp_path / "events.jsonl.1", tmp_path / "events.jsonl.2"]
    assert sorted(tmp_path.iterdir()) == sorted(files)  # older files fell off
    kept = [read_lines(f) for f in reversed(files)]  # oldest first
    seqs = [line["seq"] for lines in kept for line in lines]
    assert seqs == list(range(seqs[0], 20)) and seqs[0] > 0  # contiguous, newest last
    assert all(f.stat().st_size <= log.max_bytes for f in files)
    assert all(len(lines) == 3 for lines in kept[:2])  # full files; the live one has the rest
    assert {line["session"] for lines in kept for line in lines} == {log.session}
    assert log.rotations == 6


def test_rotation_of_an_existing_log_counts_its_size(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text("x" * 1000 + "\n")  # an earlier run's lines
    with JsonlEventLog(path, max_bytes=1200) as log:
        log.write(expression())  # would pass 1200 bytes: the old content rotates first
    assert (tmp_path / "events.jsonl.1").read_text() == "x" * 1000 + "\n"
    assert [line["seq"] for line in read_lines(path)] == [120]


def test_a_line_longer_than_the_limit_gets_its_own_file(tmp_path):
    path = tmp_path / "events.jsonl"
    with JsonlEventLog(path, max_bytes=50, backups=3) as log:
        for seq in range(3):
            log.write(expression(seq=seq))
    assert [read_lines(path)[0]["seq"]] == [2]
    assert [read_lines(tmp_path / f"events.jsonl.{i}")[0]["seq"] for i in (1, 2)] == [1, 0]


@pytest.mark.parametrize("kwargs", [{"max_bytes": 0}, {"backups": -1}])
def test_bad_rotation_settings_are_clear_errors(tmp_path, kwargs):
    with pytest.raises(MexliveError, match="event log"):
        JsonlEventLog(tmp_path / "e.jsonl", **kwargs)
