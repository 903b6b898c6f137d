"""The me-events/v1 log: schema, one flushed line per event, sessions, bad paths."""

from __future__ import annotations

import json

import pytest

from stream.errors import MexliveError
from stream.events import (
    EventBus,
    ExpressionEvent,
    JsonlEventLog,
    StatusEvent,
    validate_event,
)


def expression(**overrides) -> ExpressionEvent:
    fields = dict(
        seq=120,
        stream="cam0",
        kind="micro",
        onset_frame=100,
        apex_frame=106,
        offset_frame=111,
        onset_s=3.333,
        apex_s=3.533,
        offset_s=3.7,
        emotion="positive",
        emotion_probs={"negative": 0.1, "positive": 0.8, "surprise": 0.1},
        confidence=0.8,
        rois=["mouth_left"],
        latency_ms={"lookahead": 250.0, "capture_to_event": 281.0},
        model={"name": "spotter", "backend": "torch", "sha256": "0" * 64},
    )
    fields.update(overrides)
    return ExpressionEvent(**fields)


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
