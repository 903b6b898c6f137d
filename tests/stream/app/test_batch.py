"""``mexlive batch`` on a real local Ray runtime (2 CPUs, started by each run): equal to single
runs event for event, resumable, a bad video is a row, a killed worker costs only its video,
Ctrl-C leaves no half-written file under a final name."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stream.synthetic.animator import write_synthetic_set
from tests.helpers import REPO, start_batch
from tests.helpers import log_lines as lines
from tests.helpers import partial_files as partials
from tests.helpers import run_batch as batch

pytest.importorskip("ray", reason="mexlive batch needs Ray (the dev environment has it)")
pytestmark = pytest.mark.slow


def complete(out: Path, name: str) -> bool:
    """A final log with its record, the record saying the log's size, the log ending stopped."""
    log, record = out / f"{name}.jsonl", out / f"{name}.done.json"
    if not (log.is_file() and record.is_file()):
        return False
    said = json.loads(record.read_text())
    return said["log_bytes"] == log.stat().st_size and lines(log)[-1]["status"] == "stopped"


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    """Three 4-second synthetic clips with their truth CSVs beside them."""
    folder = tmp_path_factory.mktemp("clips")
    write_synthetic_set(folder, count=3, seconds=4.0, fps=30.0, seed=5, progress=False)
    return folder


@pytest.fixture(scope="module")
def first_batch(clips, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    out = tmp_path_factory.mktemp("out")
    result = batch(str(clips), "--out", str(out), "--workers", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    return out, result


def test_batch_equals_single_runs_event_for_event(clips, first_batch, tmp_path):
    out, result = first_batch
    names = sorted(p.stem for p in clips.glob("*.mp4"))
    assert names == ["synthetic_000", "synthetic_001", "synthetic_002"]
    expressions = 0
    for name in names:
        single = tmp_path / f"{name}.jsonl"
        video = str((clips / f"{name}.mp4").resolve())
        run = subprocess.run(
            [sys.executable, str(REPO / "run_live.py"), "--source", video, "--headless",
             "--events", str(single), "--align", "inline"],  # a Ray worker is one CPU
            capture_output=True, text=True, timeout=300, cwd=REPO,
        )  # fmt: skip
        assert run.returncode == 0, run.stderr[-2000:]
        assert lines(out / f"{name}.jsonl") == lines(single)
        expressions += sum(line["type"] == "expression" for line in lines(single))
    assert expressions > 0, "the clips should give events to compare"
    assert "MEGC table, 3 videos with ground truth" in result.stdout
    assert (out / "megc.md").is_file() and not partials(out)


def test_summary_parses_and_its_counts_match_the_logs(first_batch):
    out, _ = first_batch
    with open(out / "summary.csv", newline="") as table:
        rows = list(csv.DictReader(table))
    assert len(rows) == 3 and {r["status"] for r in rows} == {"done"}
    for row in rows:
        events = [x for x in lines(out / f"{row['name']}.jsonl") if x["type"] == "expression"]
        assert int(row["micro"]) == sum(e["kind"] == "micro" for e in events)
        assert int(row["macro"]) == sum(e["kind"] == "macro" for e in events)
        assert int(row["frames"]) == 120 and float(row["seconds"]) == pytest.approx(4.0)
        assert row["host"] and float(row["elapsed_s"]) > 0 and not row["error"]


def test_a_rerun_skips_every_finished_video(clips, first_batch):
    out, _ = first_batch
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("*.jsonl")}
    again = batch(str(clips), "--out", str(out))
    assert again.returncode == 0, again.stderr[-2000:]
    assert "3 videos, 3 already done, 0 to run" in again.stderr
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.jsonl")} == before


def test_a_truncated_video_is_a_row_and_the_others_finish(clips, tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    for name in ("synthetic_000", "synthetic_001"):
        shutil.copy(clips / f"{name}.mp4", videos)
    whole = (clips / "synthetic_002.mp4").read_bytes()
    (videos / "broken.mp4").write_bytes(whole[: len(whole) // 3])
    out = tmp_path / "out"
    result = batch(str(videos), "--out", str(out), "--workers", "2")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "2 of 3 videos analysed (1 failed)" in result.stdout
    with open(out / "summary.csv", newline="") as table:
        rows = {r["name"]: r for r in csv.DictReader(table)}
    assert rows["broken"]["status"] == "failed" and rows["broken"]["error"]
    assert complete(out, "synthetic_000") and complete(out, "synthetic_001")
    assert not (out / "broken.jsonl").exists() and not partials(out)
    only_broken = batch(str(videos / "broken.mp4"), "--out", str(tmp_path / "out2"))
    assert only_broken.returncode == 2  # every video failed


def wait_for_partial(out: Path, process: subprocess.Popen, timeout_s: float = 120) -> Path:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = [p for p in partials(out) if p.name.endswith(".partial.jsonl")]
        if found:
            return found[0]
        assert process.poll() is None, process.communicate()[1][-2000:]
        time.sleep(0.02)
    raise AssertionError("no worker started a video")


@pytest.fixture(scope="module")
def long_clips(tmp_path_factory) -> Path:
    """Three 12-second clips: long enough to be caught mid-video."""
    folder = tmp_path_factory.mktemp("long")
    write_synthetic_set(folder, count=3, seconds=12.0, fps=30.0, seed=6, progress=False)
    return folder


def test_a_killed_worker_costs_only_its_video_which_is_retried(long_clips, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    process = start_batch(str(long_clips), "--out", str(out), "--workers", "2")
    partial = wait_for_partial(out, process)
    name, pid = partial.name[1:].split(".")[:2]
    os.kill(int(pid), signal.SIGKILL)  # the Ray worker running that video
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr[-3000:]
    for clip in long_clips.glob("*.mp4"):
        assert complete(out, clip.stem)
    record = json.loads((out / f"{name}.done.json").read_text())
    assert record["status"] == "done" and record["pid"] != int(pid)  # run again elsewhere
    assert not partials(out)


def test_ctrl_c_leaves_no_half_written_file_under_a_final_name(long_clips, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    process = start_batch(str(long_clips), "--out", str(out), "--workers", "2")
    wait_for_partial(out, process)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr[-3000:]
    assert "rerun the same command" in stderr
    for log in out.glob("*.jsonl"):
        assert complete(out, log.stem), f"{log.name} is under a final name but incomplete"
    assert not partials(out)
    assert (out / "summary.csv").is_file()


def test_the_live_analyzer_does_not_import_ray():
    code = (
        "import sys, run_live, stream.app.run, stream.app.cli, stream.live.builder\n"
        "assert 'ray' not in sys.modules, 'ray imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr[-1000:]


def test_bad_input_is_one_line_and_exit_2(tmp_path):
    result = batch(str(tmp_path / "nowhere"), "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"mexlive batch: error: batch input {str(tmp_path / 'nowhere')!r}: no such file, "
        "folder or pattern"
    ]
