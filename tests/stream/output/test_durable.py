"""Event log durability: SIGKILL mid-run, restart with a new session, a full disk at start
and mid-run (a real full file system when the test may mount one, /dev/full otherwise)."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from engines.eval.eventlog import read_whole_lines
from stream.capture.sources import SyntheticSource
from stream.errors import MexliveError
from stream.live.builder import bare_pipeline
from stream.live.pipeline import Stage
from stream.output.durable import append_line, check_free_space
from stream.output.events import EventBus, JsonlEventLog, StatusEvent, validate_event
from stream.synthetic.animator import SyntheticConfig
from tests.helpers import REPO

# Writes big status lines from three threads as fast as it can, until killed.
STRESS_WRITER = """
import sys, threading
sys.path.insert(0, {repo!r})
from stream.output.events import JsonlEventLog, StatusEvent
log = JsonlEventLog({path!r})
print("ready", flush=True)
def spam(k):
    i = 0
    while True:
        log.write(StatusEvent("frames_dropped", "cam0", seq=i, detail={{"pad": "x" * (k * 3000)}}))
        i += 1
for k in (1, 2, 3):
    threading.Thread(target=spam, args=(k,), daemon=True).start()
threading.Event().wait()
"""


def parsed_lines(path: Path) -> list[dict]:
    """Every line of a log that must end whole (no writer was killed), parsed and valid."""
    text = path.read_text()
    assert text == "" or text.endswith("\n"), "the log ends in the middle of a line"
    lines = [json.loads(line) for line in text.splitlines()]
    assert all(validate_event(line) == [] for line in lines)
    return lines


def what_a_reader_sees(path: Path) -> list[dict]:
    """The lines every reader reads (``engines.eval.eventlog``) from a log whose writer may
    have been killed mid-line: each one parses and is valid; a torn last line, if the kill
    left one, is skipped with exactly one warning."""
    warnings: list[str] = []
    lines = [json.loads(text) for _, text in read_whole_lines(path, warnings.append)]
    assert all(validate_event(line) == [] for line in lines)
    torn = not path.read_bytes().endswith(b"\n")
    assert len(warnings) == (1 if torn else 0), warnings
    return lines


def wait_for_growth(path: Path, start: int, more: int, timeout_s: float = 60.0) -> None:
    """Until the log holds ``more`` bytes beyond ``start`` (the writer is writing)."""
    deadline = time.monotonic() + timeout_s
    while (path.stat().st_size if path.exists() else 0) < start + more:
        assert time.monotonic() < deadline, "the writer wrote nothing"
        time.sleep(0.01)


def test_sigkill_during_fast_writes_leaves_only_whole_lines(tmp_path):
    # Wherever the kill lands (between lines or inside one), a reader sees whole, valid lines,
    # and the next session cuts a torn line off before it appends: what is checked holds for
    # every kill point, so nothing depends on timing. A torn line written on purpose:
    # test_a_torn_last_line_is_cut_before_the_next_session and the readers' tests.
    log = tmp_path / "events.jsonl"
    for _ in range(4):  # each round appends a new session to the same file
        size = log.stat().st_size if log.exists() else 0
        writer = subprocess.Popen(
            [sys.executable, "-c", STRESS_WRITER.format(repo=str(REPO), path=str(log))],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert writer.stdout.readline().strip() == "ready"
        wait_for_growth(log, size, 100_000)  # a dozen lines or more: kill while it writes
        writer.send_signal(signal.SIGKILL)
        writer.wait(10)
    lines = what_a_reader_sees(log)
    sessions = [line["session"] for line in lines]
    assert len(set(sessions)) == 4 and len(lines) >= 4 * 10
    # Each session's lines in one block: a session never writes after the next one began.
    assert sum(a != b for a, b in itertools.pairwise(sessions)) == 3


@pytest.mark.slow
def test_sigkill_of_mexlive_then_a_restart_appends_a_new_session(tmp_path):
    log = tmp_path / "events.jsonl"
    args = [
        sys.executable,
        str(REPO / "run_live.py"),
        "--source",
        "synthetic:4",
        "--headless",
        "--no-realtime",
        "--events",
        str(log),
    ]
    run = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and '"calibrated"' not in _text(log):
        time.sleep(0.2)
    run.send_signal(signal.SIGKILL)
    run.wait(10)
    first = what_a_reader_sees(log)
    assert first[0]["status"] == "started" and "stopped" not in [f.get("status") for f in first]
    again = subprocess.run(
        [*args, "--max-frames", "20"], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert again.returncode == 0, again.stderr
    lines = parsed_lines(log)
    assert lines[: len(first)] == first  # the killed run's lines stay as they were
    sessions = [line["session"] for line in lines]
    assert len(set(sessions)) == 2 and sessions[len(first)] != sessions[0]
    assert lines[len(first)]["status"] == "started" and lines[-1]["status"] == "stopped"


def _text(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def test_dev_full_mid_run_reports_once_and_the_analysis_goes_on(capsys):
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this system")
    kept = []

    class Keep:
        def write(self, event):
            kept.append(event)

        def close(self):
            pass

    log = JsonlEventLog("/dev/full")  # opens fine; every write fails with ENOSPC
    config = SyntheticConfig(seed=5, width=160, height=120, face_height_px=60)
    source = SyntheticSource(config, realtime=False, max_frames=30)
    seen = []
    stage = Stage("count", lambda frame, results: seen.append(frame.seq))
    summary = bare_pipeline(source, EventBus([log, Keep()]), [stage], drop_report_s=0.0).run()
    assert summary.processed == 30 and summary.balanced and seen == list(range(30))
    assert kept[-1].status == "stopped" and log.lines_written == 0
    errors = [line for line in capsys.readouterr().err.splitlines() if "write failed" in line]
    assert len(errors) == 1 and "/dev/full" in errors[0]


@contextlib.contextmanager
def tiny_filesystem(kib: int):
    """A tmpfs of ``kib`` KiB mounted on a temporary folder; skips where mounting is not
    allowed (not root, no tmpfs, a container without CAP_SYS_ADMIN)."""
    folder = tempfile.mkdtemp(prefix="mexlive-full-")
    mounted = (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={kib}k", "tmpfs", folder], capture_output=True
        )
        if os.geteuid() == 0
        else None
    )
    if mounted is None or mounted.returncode != 0:
        os.rmdir(folder)
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        yield Path(folder)
    finally:
        subprocess.run(["umount", folder], capture_output=True)
        os.rmdir(folder)


def test_a_disk_that_fills_mid_run_keeps_every_line_whole(capsys):
    with tiny_filesystem(16) as folder:
        path = folder / "events.jsonl"
        log = JsonlEventLog(path)
        for i in range(60):  # ~60 KB of lines into 16 KiB
            log.write(StatusEvent("frames_dropped", "cam0", seq=i, detail={"pad": "x" * 900}))
        log.close()
        lines = parsed_lines(path)
        assert 0 < len(lines) == log.lines_written < 60
        assert [line["seq"] for line in lines] == list(range(len(lines)))
        with pytest.raises(MexliveError, match="no space left"):
            JsonlEventLog(folder / "next.jsonl")  # a full disk at start: a clear error
    errors = [line for line in capsys.readouterr().err.splitlines() if "write failed" in line]
    assert len(errors) == 1


def test_append_line_cuts_back_a_partial_write():
    with tiny_filesystem(8) as folder:
        with open(folder / "log.jsonl", "a", encoding="utf-8") as file:
            append_line(file, "a" * 5000 + "\n")
            with pytest.raises(OSError):
                append_line(file, "b" * 5000 + "\n")  # 8 KiB: only part of it fits
        assert (folder / "log.jsonl").read_text() == "a" * 5000 + "\n"


def test_check_free_space_passes_on_a_disk_with_room(tmp_path):
    check_free_space(tmp_path)  # no exception


def test_a_torn_last_line_is_cut_before_the_next_session(tmp_path):
    # What a writer killed in the middle of a large write leaves: a line without its end.
    log = tmp_path / "events.jsonl"
    first = JsonlEventLog(log, session="a")
    first.write(StatusEvent("started", "cam0"))
    first.close()
    whole = log.read_bytes()
    with open(log, "ab") as file:
        file.write(b'{"schema":"me-events/v1","type":"sta')
    second = JsonlEventLog(log, session="b")
    second.write(StatusEvent("started", "cam0"))
    second.close()
    lines = parsed_lines(log)
    assert [line["session"] for line in lines] == ["a", "b"]
    assert log.read_bytes().startswith(whole)
