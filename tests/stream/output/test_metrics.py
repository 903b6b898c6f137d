"""Prometheus metrics: scraped over HTTP during a real synthetic run, and fed events directly."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from engines.labels import EMOTIONS, KINDS
from stream.capture.sources import SyntheticSource
from stream.contracts import DROP_CAUSES
from stream.errors import MexliveError
from stream.live.builder import bare_pipeline
from stream.live.pipeline import Stage
from stream.output.events import STATUSES, EventBus, StatusEvent
from stream.output.metrics import MetricsExporter
from stream.synthetic.animator import SyntheticConfig
from tests.helpers import REPO, expression


def scrape(url: str) -> dict[str, dict[tuple, float]]:
    """{sample name: {sorted label items: value}} from one HTTP scrape."""
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    samples: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def one(samples, name: str, **labels) -> float:
    return samples[name][tuple(sorted(labels.items()))]


@pytest.mark.slow
def test_scraped_during_a_real_run(tmp_path):
    run = subprocess.Popen(
        [
            sys.executable,
            str(REPO / "run_live.py"),
            "--source",
            "synthetic:2",
            "--headless",
            "--duration",
            "60",
            "--metrics-port",
            "0",
            "--events",
            str(tmp_path / "e.jsonl"),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = None
        for line in run.stderr:  # "mexlive: Prometheus metrics on http://127.0.0.1:PORT/metrics"
            match = re.search(r"metrics on (http://\S+)", line)
            if match:
                url = match.group(1)
                break
        assert url and url.startswith("http://127.0.0.1:")  # loopback unless asked
        deadline = time.monotonic() + 90
        first = scrape(url)
        while time.monotonic() < deadline:
            first = scrape(url)
            if first.get("mexlive_frames_processed_total", {}).get((), 0) >= 30:
                break
            time.sleep(0.5)
        time.sleep(2.0)
        second = scrape(url)
    finally:
        run.terminate()  # SIGTERM: a clean stop
        run.communicate(timeout=30)
    assert run.returncode == 0
    processed = [one(s, "mexlive_frames_processed_total") for s in (first, second)]
    assert 30 <= processed[0] < processed[1]  # live counters, read at scrape time
    assert one(second, "mexlive_frames_captured_total") >= processed[1]
    assert 15 < one(second, "mexlive_camera_fps") < 45  # the synthetic camera runs at 30
    assert one(second, "mexlive_processed_fps") > 1
    assert one(second, "mexlive_face_present") == 1.0
    for stage in ("align", "features", "spot", "hud"):
        count = one(second, "mexlive_stage_latency_seconds_count", stage=stage)
        assert count >= processed[0]
        assert one(second, "mexlive_stage_latency_seconds_sum", stage=stage) > 0
    info = next(iter(second["mexlive_engine_info"]))
    assert dict(info)["source"] == "synthetic:2" and dict(info)["backend"] in (
        "onnxruntime",
        "torch",
    )
    assert one(second, "mexlive_status_events_total", status="started") == 1
    assert one(second, "mexlive_reconnects_total") == 0
    assert second["process_cpu_seconds_total"]


def test_events_by_kind_and_emotion_and_their_latency():
    exporter = MetricsExporter(port=0)
    exporter.start()
    try:
        exporter.write(expression(kind="micro", emotion="positive"))
        exporter.write(expression(kind="micro", emotion="positive"))
        exporter.write(expression(kind="macro", emotion="negative"))
        exporter.write(StatusEvent("face_lost", stream="cam0"))
        samples = scrape(exporter.url)
    finally:
        exporter.shutdown()
    assert one(samples, "mexlive_events_total", kind="micro", emotion="positive") == 2
    assert one(samples, "mexlive_events_total", kind="macro", emotion="negative") == 1
    assert one(samples, "mexlive_status_events_total", status="face_lost") == 1
    # capture_to_event 281 ms falls in the 0.3 s bucket, not in the 0.2 s one.
    assert one(samples, "mexlive_event_latency_seconds_bucket", kind="micro", le="0.3") == 2
    assert one(samples, "mexlive_event_latency_seconds_bucket", kind="micro", le="0.2") == 0


def test_busy_port_is_a_clear_error():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(MexliveError, match="cannot serve metrics"):
            MetricsExporter(port=taken.getsockname()[1]).start()


def test_bad_port_number():
    with pytest.raises(MexliveError, match="0-65535"):
        MetricsExporter(port=70000)


def test_every_series_is_served_at_zero_before_any_run():
    # The preview (--gradio) serves its exporter from start-up, before the first Start.
    exporter = MetricsExporter(port=0)
    exporter.start()
    try:
        samples = scrape(exporter.url)
    finally:
        exporter.shutdown()
    for name in ("frames_captured", "frames_processed", "reconnects"):
        assert one(samples, f"mexlive_{name}_total") == 0
    for cause in DROP_CAUSES:
        assert one(samples, "mexlive_frames_dropped_total", cause=cause) == 0
    for kind in KINDS:
        assert one(samples, "mexlive_event_latency_seconds_count", kind=kind) == 0
        for emotion in EMOTIONS:
            assert one(samples, "mexlive_events_total", kind=kind, emotion=emotion) == 0
    for status in STATUSES:
        assert one(samples, "mexlive_status_events_total", status=status) == 0


def test_a_run_attached_serves_its_stages_and_every_drop_cause_from_zero():
    exporter = MetricsExporter(port=0)
    exporter.start()
    config = SyntheticConfig(seed=1, width=160, height=120, face_height_px=60)
    source = SyntheticSource(config, realtime=False, max_frames=3)
    stages = [Stage("count", lambda frame, results: None), Stage("spot", lambda f, r: None)]
    pipeline = bare_pipeline(source, EventBus(), stages)
    try:
        exporter.attach(pipeline, {"source": "synthetic:1"})
        before = scrape(exporter.url)  # attached, not started
        summary = pipeline.run()
        after = scrape(exporter.url)
    finally:
        exporter.shutdown()
    for stage in ("count", "spot"):
        assert one(before, "mexlive_stage_latency_seconds_count", stage=stage) == 0
    assert one(after, "mexlive_frames_processed_total") == summary.processed == 3
    for cause in DROP_CAUSES:  # the causes the run never met, still there at zero
        assert one(after, "mexlive_frames_dropped_total", cause=cause) == 0
