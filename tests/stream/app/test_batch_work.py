"""A batch job's reading of its video's log (``stream.app.batch_work.read_log``), without Ray."""

from __future__ import annotations

import json

from stream.app.batch_work import read_log
from stream.output.events import JsonlEventLog, StatusEvent
from tests.helpers import expression


def test_a_torn_last_line_is_skipped_with_one_warning(tmp_path, capsys):
    log = tmp_path / "clip.jsonl"
    with JsonlEventLog(log) as events:
        events.write(StatusEvent("started", "cam0", detail={"fps": 25.0}))
        events.write(expression(kind="micro"))
        events.write(expression(kind="macro"))
        events.write(StatusEvent("stopped", "cam0", detail={"processed": 100}))
    whole = read_log(log)
    with open(log, "ab") as raw:  # a run killed in the middle of its next line
        raw.write(json.dumps({"type": "expression", "kind": "micro"}).encode()[:20])
    assert read_log(log) == whole
    assert whole["micro"] == whole["macro"] == 1 and whole["fps"] == 25.0
    assert whole["stopped"]["processed"] == 100
    err = capsys.readouterr().err
    assert err.count("warning") == 1 and f"{log}:5: skipped a torn last line" in err


def test_a_line_that_is_not_json_is_skipped_with_a_warning(tmp_path, capsys):
    log = tmp_path / "clip.jsonl"
    with JsonlEventLog(log) as events:
        events.write(expression(kind="micro"))
    with open(log, "a") as raw:
        raw.write("{not json\n")
    with JsonlEventLog(log) as events:
        events.write(expression(kind="macro"))
    read = read_log(log)
    assert read["micro"] == read["macro"] == 1
    assert f"{log}:2: skipped a line that is not JSON" in capsys.readouterr().err
