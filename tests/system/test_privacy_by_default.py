"""Privacy by default: a session writes no frame or face image anywhere unless asked to, the
event log holds no image data, the consent line is in --help, and every network address the
command line offers defaults to this machine."""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import REPO

IMAGE_SUFFIXES = {
    ".png",
    ".jpg",
    ".jpeg",
    ".bmp",
    ".gif",
    ".tif",
    ".tiff",
    ".webp",
    ".ppm",
    ".pgm",
    ".mp4",
    ".mkv",
    ".mov",
    ".avi",
    ".webm",
    ".y4m",
    ".h264",
    ".raw",
}
MAGIC = {
    b"\x89PNG": "PNG",
    b"\xff\xd8\xff": "JPEG",
    b"GIF8": "GIF",
    b"BM": "BMP",
    b"YUV4MPEG2": "Y4M",
    b"\x1aE\xdf\xa3": "Matroska/WebM",
    b"RIFF": "AVI/WebP",
}
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def image_files(root: Path, newer_than: float = 0.0) -> list[str]:
    """Files under ``root`` (modified after ``newer_than``) that hold an image or a video, by
    name or by their first bytes (MP4/MOV: an ``ftyp`` box at offset 4)."""
    found = []
    for path in root.rglob("*"):
        if ".git" in path.parts or not path.is_file() or path.stat().st_mtime < newer_than:
            continue
        with path.open("rb") as f:
            head = f.read(12)
        kind = next((name for magic, name in MAGIC.items() if head.startswith(magic)), None)
        if kind is None and head[4:8] == b"ftyp":
            kind = "MP4"
        if kind is not None or path.suffix.lower() in IMAGE_SUFFIXES:
            found.append(f"{path} ({kind or path.suffix})")
    return found


def test_the_scan_finds_images_and_videos(tmp_path):
    import cv2

    from stream.output.recorder import VideoRecorder

    frame = np.full((48, 64, 3), 90, np.uint8)
    cv2.imwrite(str(tmp_path / "face.png"), frame)
    (tmp_path / "no_suffix").write_bytes(cv2.imencode(".jpg", frame)[1].tobytes())
    (tmp_path / "renamed.dat").write_bytes((tmp_path / "face.png").read_bytes())
    recorder = VideoRecorder(tmp_path / "clip.mp4", fps=10)
    for _ in range(3):
        recorder.write(frame)
    recorder.close()
    (tmp_path / "clip.mp4").rename(tmp_path / "clip.bin")  # found by its bytes, not its name
    (tmp_path / "notes.txt").write_text("no pixels here")
    found = " ".join(image_files(tmp_path))
    assert "face.png" in found and "renamed.dat (PNG)" in found and "clip.bin (MP4)" in found
    assert "no_suffix (JPEG)" in found
    assert "notes.txt" not in found


@pytest.fixture(scope="module")
def session(tmp_path_factory) -> tuple[Path, Path, float]:
    """A headless synthetic session with its home, cache, temp and working folders inside one
    temporary folder. Returns (that folder, the event log, the start time)."""
    root = tmp_path_factory.mktemp("privacy")
    for name in ("home", "cache", "tmp", "work"):
        (root / name).mkdir()
    env = {
        **os.environ,
        "HOME": str(root / "home"),
        "XDG_CACHE_HOME": str(root / "cache"),
        "TMPDIR": str(root / "tmp"),
        "PYTHONPATH": str(REPO),
    }
    log = root / "work" / "events.jsonl"
    started = time.time()
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "run_live.py"),
            "--source",
            "synthetic:24",
            "--headless",
            "--no-realtime",
            "--max-frames",
            "300",
            "--events",
            str(log),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=root / "work",
        env=env,
    )
    assert result.returncode == 0, result.stderr
    return root, log, started


@pytest.mark.slow
def test_a_session_writes_no_image_anywhere(session):
    root, _, started = session
    assert image_files(root) == []
    assert image_files(REPO, newer_than=started) == []  # nor beside the code


@pytest.mark.slow
def test_the_event_log_holds_no_image_data(session):
    _, log, _ = session
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert any(line["type"] == "expression" for line in lines)  # a real session, with events
    for line in lines:
        assert_no_pixels(line)
    assert max(len(line) for line in log.read_text().splitlines()) < 4096


def assert_no_pixels(value, where: str = "") -> None:
    """No long arrays of numbers (an image, a face crop, landmarks) and no long strings (a
    base64 image) anywhere in a log line."""
    if isinstance(value, dict):
        for key, item in value.items():
            assert_no_pixels(item, f"{where}.{key}")
    elif isinstance(value, list):
        assert len(value) <= 16, f"{where} holds {len(value)} values"
        for item in value:
            assert_no_pixels(item, where)
    elif isinstance(value, str):
        assert len(value) <= 512, f"{where} holds a {len(value)}-character string"


def test_help_carries_the_consent_line():
    result = subprocess.run(
        [sys.executable, str(REPO / "run_live.py"), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    text = " ".join(result.stdout.split())
    assert "not a diagnosis" in text and "know and agree" in text


def test_every_network_address_defaults_to_this_machine():
    """Whatever serves over the network (the Gradio preview, the metrics port) binds the
    loopback address unless told otherwise."""
    from run_live import build_parser

    parser = build_parser()
    addresses = [a for a in parser._actions if any(k in a.dest for k in ("host", "bind"))]
    if not addresses:
        pytest.skip("this build serves nothing over the network")
    for action in addresses:
        assert action.default in LOOPBACK, f"--{action.dest} defaults to {action.default}"


def listening_addresses(port: int) -> set[str]:
    """Local addresses with a TCP socket listening on ``port`` (from /proc/net/tcp and tcp6)."""
    found = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        if not Path(table).exists():
            continue
        for row in Path(table).read_text().splitlines()[1:]:
            local, state = row.split()[1], row.split()[3]
            address, port_hex = local.split(":")
            if state == "0A" and int(port_hex, 16) == port:  # 0A: LISTEN
                # The kernel prints each 32-bit word of the address in host (little) endian.
                raw = b"".join(bytes.fromhex(address[i : i + 8])[::-1] for i in range(0, width, 8))
                found.add(str(ipaddress.ip_address(raw)))
    return found


@pytest.mark.slow
def test_the_metrics_port_listens_on_loopback_only(tmp_path):
    import signal
    import socket

    from run_live import build_parser

    if "--metrics-port" not in build_parser()._option_string_actions:
        pytest.skip("this build has no --metrics-port")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    run = subprocess.Popen(
        [
            sys.executable,
            str(REPO / "run_live.py"),
            "--source",
            "synthetic",
            "--headless",
            "--duration",
            "60",
            "--metrics-port",
            str(port),
            "--events",
            str(tmp_path / "e.jsonl"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=REPO,
    )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not listening_addresses(port):
            time.sleep(0.5)
        addresses = listening_addresses(port)
        assert addresses and addresses <= LOOPBACK, addresses
    finally:
        run.send_signal(signal.SIGTERM)
        run.wait(30)
