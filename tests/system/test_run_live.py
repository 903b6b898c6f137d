"""run_live.py end to end in a subprocess: real exit codes, messages, logs and recordings."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from stream.output.events import validate_event
from tests.helpers import REPO, mexlive, read_log


def assert_one_clear_error(result: subprocess.CompletedProcess, names: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("mexlive: error:")]
    assert len(errors) == 1 and names in errors[0], result.stderr


def test_help_explains_sources_and_keys():
    result = mexlive("--help")
    assert result.returncode == 0
    for needle in ("--source", "synthetic[:seed]", "--events", "--record", "q/Esc quit"):
        assert needle in result.stdout


@pytest.mark.parametrize(
    "source, names",
    [
        ("does/not/exist.mp4", "does/not/exist.mp4"),  # missing file
        ("gibberish", "gibberish"),  # neither camera, file, URL nor synthetic
        ("synthetic:x", "synthetic:x"),  # bad seed
        ("93", "camera 93"),  # a camera index that does not open
    ],
)
def test_bad_input_exits_2_with_one_message(source, names, tmp_path):
    result = mexlive("--source", source, "--headless", "--events", str(tmp_path / "e.jsonl"))
    assert_one_clear_error(result, names)


def test_url_that_does_not_answer_exits_2(tmp_path):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(4)
        url = f"http://127.0.0.1:{server.getsockname()[1]}/cam"
        result = mexlive(
            "--source",
            url,
            "--open-timeout",
            "0.5",
            "--headless",
            "--events",
            str(tmp_path / "e.jsonl"),
        )
    assert_one_clear_error(result, url)


def test_unwritable_event_log_exits_2(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = mexlive(
        "--source",
        "synthetic",
        "--headless",
        "--max-frames",
        "5",
        "--events",
        str(blocker / "e.jsonl"),
    )
    assert_one_clear_error(result, "cannot write event log")


@pytest.mark.slow
@pytest.mark.parametrize(
    "video, index_at_front",
    [
        ("lp_d9.mp4", False),  # index at the end: the cut file cannot even be opened
        ("tpsmm_driving.mp4", True),  # index first: decodes halfway, then runs out
    ],
)
def test_truncated_video(fixtures_dir, tmp_path, video, index_at_front):
    """A cut file that cannot be opened is bad input (exit 2, earlier lines kept); one that
    opens but holds fewer frames than its header promises is analysed: a warning, a
    source_ended_early line, exit 0."""
    data = (fixtures_dir / "videos" / video).read_bytes()
    cut = tmp_path / f"cut_{video}"
    cut.write_bytes(data[: len(data) // 2])
    log = tmp_path / "events.jsonl"
    earlier = mexlive(
        "--source",
        str(fixtures_dir / "videos" / video),
        "--headless",
        "--max-frames",
        "10",
        "--events",
        str(log),
    )
    assert earlier.returncode == 0, earlier.stderr
    before = log.read_text()

    result = mexlive("--source", str(cut), "--headless", "--events", str(log))
    assert log.read_text().startswith(before)  # every earlier line is still there, unchanged
    lines = read_log(log)
    new = [line for line in lines if line["session"] != lines[0]["session"]]
    if index_at_front:
        assert result.returncode == 0, result.stderr
        warnings = [ln for ln in result.stderr.splitlines() if ln.startswith("mexlive: warning:")]
        assert len(warnings) == 1 and "ends early" in warnings[0] and str(cut) in warnings[0]
        statuses = [line["status"] for line in new if line["type"] == "status"]
        assert statuses[0] == "started" and statuses[-1] == "stopped"
        assert statuses.count("source_ended_early") == 1 and "face_found" in statuses
        assert "source_error" not in statuses
        stopped = new[-1]
        assert 0 < stopped["processed"] < 169 and stopped["balanced"]
        assert stopped["error"] is None and "ends early" in stopped["warning"]
    else:
        assert_one_clear_error(result, str(cut))
        assert new == []  # failed before the run started: nothing to add


@pytest.mark.slow
def test_file_replay_with_record(fixtures_dir, tmp_path):
    import av

    log, video = tmp_path / "events.jsonl", tmp_path / "analysed.mp4"
    source = fixtures_dir / "videos" / "lp_d0.mp4"
    result = mexlive(
        "--source", str(source), "--headless", "--events", str(log), "--record", str(video)
    )
    assert result.returncode == 0, result.stderr
    assert "78 of 78 frames" in result.stdout
    lines = read_log(log)
    assert lines[0]["status"] == "started" and lines[-1]["status"] == "stopped"
    assert lines[-1]["captured"] == lines[-1]["processed"] == 78 and lines[-1]["balanced"]
    with av.open(str(video)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 78


def test_synthetic_headless_run(tmp_path):
    log = tmp_path / "events.jsonl"
    result = mexlive(
        "--source",
        "synthetic:3",
        "--headless",
        "--max-frames",
        "40",
        "--no-realtime",
        "--events",
        str(log),
    )
    assert result.returncode == 0, result.stderr
    lines = read_log(log)
    statuses = [line["status"] for line in lines if line["type"] == "status"]
    assert statuses[0] == "started" and statuses[-1] == "stopped" and "face_found" in statuses
    assert lines[-1]["processed"] == 40 and lines[-1]["balanced"]
    assert lines[0]["source"] == "synthetic:3"


def test_no_display_falls_back_to_headless(tmp_path):
    env_run = subprocess.run(
        [
            sys.executable,
            str(REPO / "run_live.py"),
            "--source",
            "synthetic",
            "--max-frames",
            "5",
            "--no-realtime",
            "--events",
            str(tmp_path / "e.jsonl"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env={k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")},
    )
    assert env_run.returncode == 0, env_run.stderr
    assert "no display found; running headless" in env_run.stderr


@pytest.mark.slow
def test_onnxruntime_and_torch_give_the_same_events(fixtures_dir, tmp_path):
    source = fixtures_dir / "videos" / "lp_d3.mp4"  # frowns: the spotter reports events here
    events = {}
    for backend in ("torch", "onnxruntime"):
        log = tmp_path / f"{backend}.jsonl"
        # the shipped operating point reports nothing on this 12-s clip: a lower threshold
        # (--threshold-scale) gives the comparison events
        result = mexlive(
            "--source", str(source), "--headless", "--backend", backend, "--events", str(log),
            "--threshold-scale", "0.1",
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert f"spotter on {backend}" in result.stderr
        keys = ("kind", "onset_frame", "apex_frame", "offset_frame", "emotion")
        events[backend] = [
            tuple(line[k] for k in keys) for line in read_log(log) if line["type"] == "expression"
        ]
    assert events["torch"] == events["onnxruntime"] and events["torch"]


@pytest.mark.slow
def test_events_to_stdout_leave_stdout_pure_json(tmp_path):
    result = mexlive(
        "--source",
        "synthetic:2",
        "--headless",
        "--max-frames",
        "60",
        "--no-realtime",
        "--events",
        "-",
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]  # nothing else on stdout
    assert all(validate_event(line) == [] for line in lines)
    assert lines[0]["status"] == "started" and lines[-1]["status"] == "stopped"
    # The person's messages (summary, ground-truth table) went to stderr.
    assert "60 of 60 frames" in result.stderr and "ground truth" in result.stderr


@pytest.mark.slow
def test_headless_record_carries_the_hud(tmp_path):
    import av
    import numpy as np

    video = tmp_path / "hud.mp4"
    result = mexlive(
        "--source",
        "synthetic:2",
        "--headless",
        "--max-frames",
        "30",
        "--no-realtime",
        "--events",
        str(tmp_path / "e.jsonl"),
        "--record",
        str(video),
    )
    assert result.returncode == 0, result.stderr
    with av.open(str(video)) as container:
        last = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)][-1]
    face_box = (last[..., 0] > 180) & (last[..., 1] < 80) & (last[..., 2] > 180)  # magenta
    assert face_box.sum() > 300  # the HUD is in the recording, not only on screen
    assert np.median(last[:60, :250]) < 110  # the darkened stats panel


@pytest.mark.parametrize(
    "args, names",
    [
        (("--events-max-mb", "0"), "--events-max-mb"),  # a log cannot rotate at zero bytes
        (("--metrics-port", "70000"), "--metrics-port"),  # not a port
    ],
)
def test_bad_monitoring_options_exit_2(tmp_path, args, names):
    result = mexlive(
        "--headless", "--max-frames", "1", "--events", str(tmp_path / "e.jsonl"), *args
    )
    assert_one_clear_error(result, names)


def test_tail_subcommand_exits_2_on_a_missing_log(tmp_path):
    result = mexlive("tail", str(tmp_path / "missing.jsonl"))
    assert result.returncode == 2 and "no such log" in result.stderr


def test_one_short_start_up_line_and_the_detail_behind_v(tmp_path):
    quick = ("--headless", "--no-realtime", "--max-frames", "3", "--events", str(tmp_path / "e"))
    plain, verbose = mexlive(*quick), mexlive(*quick, "-v")
    assert plain.returncode == 0 and verbose.returncode == 0, plain.stderr + verbose.stderr
    said = plain.stderr.splitlines()
    assert len(said) == 1 and said[0].startswith("mexlive: learned spotter on "), said
    assert "recognizer MPFNet" in said[0] and len(said[0]) < 100
    detail = verbose.stderr.splitlines()
    assert detail[0] == said[0] and len(detail) == 3  # the same line, then spotter and recognizer
    assert any("spotter on" in line and "(" in line for line in detail[1:]), detail
