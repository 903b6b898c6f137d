"""The preview's session without a browser: runs built like the CLI's (the recognizer fused),
the page's tick against a Stop in progress, and the Prometheus metrics that follow each run
(real HTTP scrapes, and the real CLI at start-up)."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from stream.live.builder import LiveConfig, OpenOptions, RecognizerOptions
from stream.output.metrics import MetricsExporter
from stream.synthetic.animator import SyntheticConfig
from stream.synthetic.framecode import write_coded_clip
from stream.ui.preview_session import PreviewSession, SessionConfig
from tests.helpers import REPO, free_port

SHORT_CLIP = SyntheticConfig(seed=2, fps=15.0, width=480, height=360, face_height_px=160)


@pytest.mark.slow
def test_session_stop_ends_a_quiet_browser_run(tmp_path):
    """A browser run with no frames stops at once, with a balanced, empty account."""
    session = PreviewSession(SessionConfig(log_dir=tmp_path))
    session.start("browser")
    done = threading.Event()
    threading.Thread(target=lambda: (session.stop(), done.set()), daemon=True).start()
    assert done.wait(5.0), "stop blocked on a source without frames"
    assert session.summary.captured == 0 and session.summary.balanced


@pytest.mark.slow
def test_session_events_fuse_the_recognizer(tmp_path):
    """The preview's events carry the recognizer's fusion, as the CLI's do; off, they don't."""
    for recognizer in (True, False):
        live = LiveConfig(
            open=OpenOptions(realtime=False), recognizer=RecognizerOptions(enabled=recognizer)
        )
        session = PreviewSession(SessionConfig(live=live, log_dir=tmp_path / str(recognizer)))
        line = session.start("synthetic:5")
        assert ("recognizer MPFNet" in line) == recognizer, line
        deadline = time.monotonic() + 120
        while session.running and time.monotonic() < deadline and not _expressions(session):
            time.sleep(0.2)
        session.stop()
        lines = _expressions(session)
        assert lines, "no expression in the synthetic run"
        assert all(("emotion_sources" in line) == recognizer for line in lines)


def _expressions(session) -> list[dict]:
    if session.log_path is None or not session.log_path.exists():
        return []
    lines = [json.loads(x) for x in session.log_path.read_text().splitlines() if x.strip()]
    return [x for x in lines if x.get("type") == "expression"]


def scrape(url: str) -> dict[str, float]:
    """{sample name: value} of the unlabelled samples of one HTTP scrape (info: its labels)."""
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if not sample.labels or sample.name == "mexlive_engine_info":
                samples[sample.name] = sample.labels or sample.value
    return samples


@pytest.mark.slow
def test_metrics_follow_each_preview_run(tmp_path):
    """--metrics-port with --gradio: zero before a run, the run's numbers while it runs, its
    totals (rates back at zero) after Stop, the next run's own numbers after the next Start."""
    exporter = MetricsExporter(port=free_port())
    exporter.start()
    session = PreviewSession(SessionConfig(log_dir=tmp_path), exporter)
    try:
        idle = scrape(exporter.url)
        assert idle["mexlive_processed_fps"] == idle["mexlive_camera_fps"] == 0.0
        assert idle["mexlive_frames_processed_total"] == 0.0  # no run yet: served, at zero
        totals = []
        for seed in (3, 4):
            session.start(f"synthetic:{seed}")
            deadline = time.monotonic() + 60
            running = scrape(exporter.url)
            while time.monotonic() < deadline and running["mexlive_processed_fps"] == 0:
                time.sleep(0.5)
                running = scrape(exporter.url)
            assert running["mexlive_processed_fps"] > 0 and running["mexlive_camera_fps"] > 0
            assert running["mexlive_engine_info"]["source"] == f"synthetic:{seed}"
            session.stop()
            after = scrape(exporter.url)
            assert after["mexlive_processed_fps"] == after["mexlive_camera_fps"] == 0.0
            totals.append(after["mexlive_frames_processed_total"])
            assert totals[-1] == session.summary.processed > 0  # this run's, not a sum
    finally:
        session.stop()
        exporter.shutdown()


@pytest.mark.slow
def test_gradio_serves_metrics_from_start_up(tmp_path):
    """The real CLI: the metrics answer (gauges and counters at zero) as the preview starts,
    before a run (every labelled series: tests/stream/output/test_metrics.py)."""
    port = free_port()
    page = ["--port", str(free_port())]
    served = subprocess.Popen(
        [sys.executable, str(REPO / "run_live.py"), "--gradio", "--metrics-port", str(port), *page],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        # Ctrl+C as in a terminal, also when pytest runs in the background (where SIGINT is
        # ignored and a child inherits that).
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        url = None
        for line in served.stderr:  # "mexlive: Prometheus metrics on http://127.0.0.1:PORT/..."
            match = re.search(r"metrics on (http://\S+)", line)
            if match:
                url = match.group(1)
                break
        assert url == f"http://127.0.0.1:{port}/metrics"
        samples = scrape(url)
    finally:
        served.send_signal(signal.SIGINT)  # Ctrl+C: the preview's clean end
        served.communicate(timeout=60)
    assert samples["mexlive_processed_fps"] == samples["mexlive_camera_fps"] == 0.0
    assert samples["mexlive_face_present"] == 0.0
    # The counters too, before any run: a dashboard sees each series from start-up.
    for name in ("frames_captured", "frames_processed", "reconnects"):
        assert samples[f"mexlive_{name}_total"] == 0.0
    assert served.returncode == 0


@pytest.mark.slow
def test_the_page_tick_never_reports_a_run_that_stop_is_ending(tmp_path):
    """The page's tick finishes only runs that ended by themselves: while Stop is ending a
    run (its worker already done, its summary not yet returned) the tick gets None, so the
    page keeps Stop's summary line instead of a late "not running" (the flaky Stop of the
    browser tests)."""
    session = PreviewSession(SessionConfig(log_dir=tmp_path))
    session.start("synthetic")
    while session.stats().processed < 5:
        time.sleep(0.05)
    ticks: list[str | None] = []
    stopping = threading.Event()

    def tick() -> None:  # as fast as it goes, like a page whose tick is always due
        while not stopping.is_set():
            ticks.append(session.finish_if_ended())

    ticker = threading.Thread(target=tick, daemon=True)
    ticker.start()
    line = session.stop()
    stopping.set()
    ticker.join(5.0)
    assert "frames from" in line and ticks and set(ticks) == {None}, set(ticks)


@pytest.mark.slow
def test_the_page_tick_finishes_a_file_that_ended(tmp_path):
    path = tmp_path / "short.y4m"
    write_coded_clip(path, SHORT_CLIP, 15)
    session = PreviewSession(SessionConfig(log_dir=tmp_path / "logs"))
    session.start(str(path))
    for _ in range(600):
        if session.ended:
            break
        time.sleep(0.05)
    line = session.finish_if_ended()
    assert line is not None and "15 of 15 frames" in line
    assert session.finish_if_ended() is None and session.summary.balanced
