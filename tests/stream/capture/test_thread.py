"""CaptureThread and Pipeline lifecycle: stop against a blocked source, stalls, reconnects,
live drops, and exact file replay against PyAV's own decode."""

from __future__ import annotations

import time

import numpy as np
import pytest

from stream.capture.ring import FrameRing
from stream.capture.sources import AVSource
from stream.capture.thread import CaptureThread
from stream.live.builder import bare_pipeline
from stream.live.pipeline import Stage
from stream.output.events import EventBus
from tests.helpers import Collect, ScriptedSource


def test_stop_returns_within_a_second_when_the_source_blocks():
    source = ScriptedSource(block_at=3)
    ring = FrameRing(4, "block")
    capture = CaptureThread(source, ring)
    capture.start()
    time.sleep(0.3)
    t0 = time.monotonic()
    capture.stop(join_timeout_s=1.0)
    assert time.monotonic() - t0 < 1.1
    source.release.set()


def test_pipeline_stop_within_a_second_and_balanced_when_the_source_blocks():
    source = ScriptedSource(block_at=5)
    sink = Collect()
    pipeline = bare_pipeline(source, EventBus([sink]))
    pipeline.start()
    time.sleep(0.3)
    t0 = time.monotonic()
    summary = pipeline.stop()
    assert time.monotonic() - t0 < 1.5  # capture join 1 s + worker exit
    assert summary.processed == 5 and summary.balanced
    stopped = sink.events[-1]
    assert stopped.status == "stopped" and stopped.detail["balanced"]
    source.release.set()


def test_stall_is_reported_once_within_the_timeout():
    source = ScriptedSource(n_frames=10, block_at=4)
    sink = Collect()
    pipeline = bare_pipeline(source, EventBus([sink]), stall_timeout_s=0.5)
    pipeline.start()
    time.sleep(1.2)
    assert sink.statuses().count("source_stalled") == 1
    source.release.set()
    pipeline.wait(2.0)
    summary = pipeline.stop()
    assert summary.processed == 10 and summary.balanced


def test_live_source_reconnects_with_backoff_and_keeps_seq_increasing():
    source = ScriptedSource(n_frames=30, fail_at=(10,), failed_opens=2, live=True)
    sink = Collect()
    seqs = []
    stage = Stage("collect", lambda frame, results: seqs.append(frame.seq))
    pipeline = bare_pipeline(source, EventBus([sink]), [stage], ring_capacity=64)
    pipeline.capture.backoff_s = (0.05, 0.2)
    summary = pipeline.run()
    assert "source_error" in sink.statuses() and "reconnected" in sink.statuses()
    assert source.opens == 4  # first open + 2 failed reopens + 1 good one
    assert seqs == list(range(30))  # indices restarted at 0 on the device, seq did not
    assert summary.balanced and pipeline.capture.reconnects == 1


def test_file_source_failure_ends_the_run_with_its_error():
    source = ScriptedSource(n_frames=30, fail_at=(12,))
    sink = Collect()
    summary = bare_pipeline(source, EventBus([sink])).run()
    assert summary.processed == 12 and summary.error == "unplugged" and summary.balanced
    assert sink.statuses() == ["started", "source_error", "stopped"]


def test_live_source_with_slow_consumer_drops_oldest_and_balances():
    source = ScriptedSource(n_frames=200, live=True)
    sink = Collect()
    slow = Stage("slow", lambda frame, results: time.sleep(0.002))
    summary = bare_pipeline(source, EventBus([sink]), [slow], ring_capacity=2).run()
    assert summary.dropped.get("ring_overwrite", 0) > 0
    assert summary.captured == 200 and summary.balanced
    assert "frames_dropped" in sink.statuses()


def test_stage_error_counts_the_frame_and_goes_on():
    source = ScriptedSource(n_frames=20)

    def flaky(frame, results):
        if frame.seq == 7:
            raise RuntimeError("boom")

    sink = Collect()
    summary = bare_pipeline(source, EventBus([sink]), [Stage("flaky", flaky)]).run()
    assert summary.processed == 19 and summary.dropped == {"stage_error:flaky": 1}
    assert summary.balanced


@pytest.mark.slow
def test_file_replay_delivers_every_frame_once_in_order(fixtures_dir):
    import av

    path = fixtures_dir / "videos" / "lp_d9.mp4"
    reference = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            image = frame.to_ndarray(format="bgr24")
            reference.append((frame.time, int(image.sum(dtype=np.int64))))
    seen = []
    stage = Stage(
        "checksum", lambda f, r: seen.append((f.seq, f.pts_s, int(f.image.sum(dtype=np.int64))))
    )
    summary = bare_pipeline(AVSource(path), EventBus(), [stage], ring_capacity=4).run()
    assert [s for s, _, _ in seen] == list(range(len(reference)))
    assert [(p, c) for _, p, c in seen] == reference
    assert summary.captured == summary.processed == len(reference) == 587
    assert summary.dropped_total == 0 and summary.error is None


def test_stop_drains_what_a_lossless_source_already_queued():
    source = ScriptedSource()  # endless, not live: nothing may be lost
    slow = Stage("slow", lambda frame, results: time.sleep(0.005))
    summary = bare_pipeline(source, EventBus(), [slow], ring_capacity=8, duration_s=0.5).run()
    assert summary.processed > 20 and summary.dropped_total == 0
    assert summary.captured == summary.processed


def test_stop_drops_a_live_backlog():
    source = ScriptedSource(live=True)  # endless camera, faster than the analysis
    slow = Stage("slow", lambda frame, results: time.sleep(0.005))
    summary = bare_pipeline(source, EventBus(), [slow], ring_capacity=8, duration_s=0.5).run()
    assert summary.dropped.get("ring_overwrite", 0) > 0 and summary.balanced
