"""The real CLI with wrong values: exit code 2, one line naming the problem, no traceback.

Each case is a quick ``--source synthetic --headless --max-frames 5`` run with one wrong
value; none of them may leave an event log behind (the run never started).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch

from tests.conftest import REPO

WEIGHTS = REPO / "engines" / "weights"
NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")


def corrupted_weights(tmp_path: Path) -> Path:
    """The shipped spotter weights and manifest, copied, with bytes flipped in the weights."""
    folder = tmp_path / "weights"
    folder.mkdir()
    shutil.copy(WEIGHTS / "manifest.json", folder / "manifest.json")
    data = bytearray((WEIGHTS / "spotter.pt").read_bytes())
    for i in range(len(data) // 3, len(data) // 3 + 64):
        data[i] ^= 0xFF
    (folder / "spotter.pt").write_bytes(bytes(data))
    return folder / "spotter.pt"


def a_file(tmp_path: Path) -> Path:
    """A plain file, to stand where a folder should be."""
    path = tmp_path / "notes.txt"
    path.write_text("not a folder")
    return path


# Each case: (flags given the tmp folder and a busy port, text the error line must contain).
Case = Callable[[Path, int], tuple[list[str], str]]
CASES: list[tuple[str, Case]] = [
    # a GPU backend asked for on a machine without CUDA: the backend factory says so
    ("tensorrt", lambda tmp, port: (["--backend", "tensorrt"], "tensorrt")),
    ("torch-cuda", lambda tmp, port: (["--backend", "torch-cuda"], "torch-cuda")),
    # weights that do not exist, and weights whose sha256 no longer matches their manifest
    (
        "missing-weights",
        lambda tmp, port: (["--weights", str(tmp / "nope.pt")], str(tmp / "nope.pt")),
    ),
    (
        "corrupted-weights",
        lambda tmp, port: (["--weights", str(corrupted_weights(tmp))], str(tmp / "weights")),
    ),
    # frame rates and frame counts that cannot be
    ("fps-0", lambda tmp, port: (["--fps", "0"], "--fps")),
    ("fps-negative", lambda tmp, port: (["--fps", "-5"], "--fps")),
    ("max-frames-negative", lambda tmp, port: (["--max-frames", "-1"], "--max-frames")),
    ("ring-0", lambda tmp, port: (["--ring", "0"], "--ring")),  # a capture ring with no slot
    # a sticker image that is not there
    (
        "unknown-sticker",
        lambda tmp, port: (["--privacy-sticker", str(tmp / "s.png")], str(tmp / "s.png")),
    ),
    # the preview's port is taken by another process: found before Gradio starts
    ("port-in-use", lambda tmp, port: (["--gradio", "--port", str(port)], f":{port}")),
    # outputs under a "folder" that is a file
    (
        "record-parent-is-a-file",
        lambda tmp, port: (["--record", str(a_file(tmp) / "r.mp4")], str(tmp / "notes.txt")),
    ),
    (
        "events-parent-is-a-file",
        lambda tmp, port: (["--events", str(a_file(tmp) / "e.jsonl")], str(tmp / "notes.txt")),
    ),
    # not a TCP port
    (
        "metrics-port-out-of-range",
        lambda tmp, port: (["--metrics-port", "70000"], "--metrics-port"),
    ),
]
NEEDS_NO_CUDA = {"tensorrt", "torch-cuda"}
# These load the models or Gradio first (~5 s each); the rest fail within a second (a missing
# weights or sticker file is found before any model loads), so these two are marked slow.
SLOW = {"corrupted-weights", "port-in-use"}


def marks(name: str) -> list[pytest.MarkDecorator]:
    return ([NO_CUDA] if name in NEEDS_NO_CUDA else []) + (
        [pytest.mark.slow] if name in SLOW else []
    )


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port another socket listens on for the whole test."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        yield busy.getsockname()[1]


@pytest.mark.parametrize(
    "name, case",
    [pytest.param(*c, id=c[0], marks=marks(c[0])) for c in CASES],
)
def test_bad_input_exits_2_with_one_line(name, case, tmp_path, busy_port):
    flags, names = case(tmp_path, busy_port)
    log = tmp_path / "events.jsonl"
    quick = ["--source", "synthetic", "--headless", "--max-frames", "5", "--events", str(log)]
    run = subprocess.run(
        [sys.executable, str(REPO / "run_live.py"), *quick, *flags],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr
    errors = [line for line in run.stderr.splitlines() if line.startswith("mexlive: error:")]
    assert len(errors) == 1 and names in errors[0], run.stderr
    others = [line for line in run.stderr.splitlines() if line not in errors]
    noise = [line for line in others if "error" in line.lower() or "warn" in line.lower()]
    assert noise == [], run.stderr  # no second message (a library's warning, a stray error)
    assert not log.exists()  # no half event log: the run never started


def folders(tmp: Path) -> dict[str, Path]:
    """An empty folder, a text file and a missing path, made fresh in ``tmp``."""
    empty, notes = tmp / "empty", tmp / "notes.txt"
    empty.mkdir()
    notes.write_text("not a video")
    return {"DIR": empty, "TXT": notes, "MISSING": tmp / "missing.mp4", "OUT": tmp / "out"}


# The inputs a newcomer tried (issue 23): the command line, with DIR / TXT / MISSING / OUT for
# paths in the test's folder, and what its one error line must say besides the program.
FIRST_HOUR = {
    # --source a folder, a text file, nothing: said before any model loads
    "source-dir": ("--source DIR", "--source DIR", "directory"),
    "source-txt": ("--source TXT", "--source TXT", "cannot open"),
    "source-missing": ("--source MISSING", "--source MISSING", "no such file"),
    "source-camera": ("--source 93", "--source 93", "camera 93"),  # no /dev/video93 here
    # an unknown flag: one line pointing at --help, not the usage of every flag
    "unknown-flag": ("--bogus", "unrecognized arguments: --bogus", "--help"),
    "inspect-unknown-flag": ("inspect --bogus TXT", "--bogus"),
    "tail-unknown-flag": ("tail --bogus TXT", "--bogus", "mexlive tail --help"),
    "batch-without-out": ("batch DIR", "--out"),
    # inspect: a folder that exists is a folder; a text file without a raw errno
    "inspect-dir": ("inspect DIR", "DIR", "is a folder"),
    "inspect-txt": ("inspect TXT", "TXT", "not a video"),
    "inspect-missing": ("inspect MISSING", "MISSING", "no such"),
    # batch: nothing to do leaves no --out folder; each wrong number names its flag
    "batch-empty-dir": ("batch DIR --out OUT", "DIR", "no video files"),
    "batch-workers": ("batch DIR --out OUT --workers -1", "--workers -1"),
    "batch-retries": ("batch DIR --out OUT --retries -1", "--retries -1"),
}


@pytest.mark.parametrize("name", FIRST_HOUR)
def test_first_hour_mistakes_are_one_line_before_any_model(name, tmp_path):
    command, *says = FIRST_HOUR[name]
    if name == "source-camera" and (
        not sys.platform.startswith("linux") or Path("/dev/video93").exists()
    ):
        pytest.skip("a missing camera is found before the models only on Linux (V4L2 nodes)")
    paths = folders(tmp_path)
    argv = [str(paths.get(arg, arg)) for arg in command.split()]
    prog = f"mexlive {argv[0]}" if argv[0] in ("inspect", "batch", "tail") else "mexlive"
    log = tmp_path / "events.jsonl"
    live = [] if argv[0] in ("inspect", "batch", "tail") else ["--headless", "--events", str(log)]
    run = subprocess.run(
        [sys.executable, str(REPO / "run_live.py"), *argv, *live],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert run.returncode == 2, run.stderr
    lines = [line for line in (run.stdout + run.stderr).splitlines() if line.strip()]
    assert len(lines) == 1, lines  # no model-loading line, no usage block, no traceback
    assert lines[0].startswith(f"{prog}: error: ")
    for text in says:
        text = " ".join(str(paths.get(word, word)) for word in text.split(" "))
        assert text in lines[0], lines[0]
    assert "Errno" not in lines[0]
    for path in paths.values():  # a path is named once
        assert lines[0].count(str(path)) <= 1, lines[0]
    assert not paths["OUT"].exists() and not log.exists()  # nothing left behind
