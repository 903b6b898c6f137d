"""Two stage threads (alignment beside features + spotter) against one: same rows and events,
the frame accounting under a stalled and a fast source, a prompt stop."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from engines.decoding import EventDecoder, fixed_decoder
from stream.live.builder import LiveConfig, RecognizerOptions, RunLimits, build_live
from stream.live.pipeline import Pipeline, Stage
from stream.output.events import EventBus
from tests.helpers import Collect, ScriptedSource, fixtures_root


def _analyse(video: str, stage_threads: int, align: str = "inline"):
    config = LiveConfig(
        source=video,
        limits=RunLimits(stage_threads=stage_threads, align=align),
        recognizer=RecognizerOptions(backend="onnxruntime"),
        keep_rows=True,
    )
    run = build_live(config, EventBus([]))
    # a low fixed threshold: the shipped operating point decides nothing on a 200-frame clip,
    # and the comparison below needs intervals
    run.spotter.decoder = EventDecoder(fixed_decoder(0.05))
    summary = run.pipeline.run()
    return run, summary


@pytest.mark.parametrize("align", ["inline", "process"])
def test_two_stage_threads_give_the_rows_and_events_of_one(align):
    root = fixtures_root()
    if root is None:
        pytest.skip("fixture videos not found (../shared/fixtures or $MEXLIVE_FIXTURES)")
    video = str(root / "videos" / "st_rd2.mp4")
    one, one_summary = _analyse(video, 1)
    two, two_summary = _analyse(video, 2, align)  # "process": dlib in a child process
    assert two.pipeline.front_count == 1 and one.pipeline.front_count == 0
    assert one_summary.processed == two_summary.processed == 200
    assert one_summary.balanced and two_summary.balanced
    rows_one = np.stack([r.values for r in one.analysis.rows])  # (N, F)
    rows_two = np.stack([r.values for r in two.analysis.rows])
    np.testing.assert_array_equal(rows_one, rows_two)  # bit for bit
    assert [r.valid for r in one.analysis.rows] == [r.valid for r in two.analysis.rows]
    # every decided interval, reported or not
    assert one.spotter.decided, "the clip should give at least one interval to compare"

    def described(decided):
        fields = ("kind", "onset_seq", "apex_seq", "offset_seq", "emotion_probs")
        return [(*(getattr(s, f) for f in fields), reason) for s, reason in decided]

    assert described(one.spotter.decided) == described(two.spotter.decided)
    assert [e.to_dict()["onset_frame"] for e in one.spotter.events] == [
        e.to_dict()["onset_frame"] for e in two.spotter.events
    ]


def _pipelined(source, front, back, **kwargs) -> Pipeline:
    stages = [Stage("front", front), Stage("back", back)]
    return Pipeline(source, EventBus([Collect()]), stages, front_stages=1, **kwargs)


def test_accounting_balances_when_the_source_stalls_mid_stream():
    source = ScriptedSource(n_frames=40, block_at=15)
    seen: list[int] = []
    pipeline = _pipelined(
        source,
        lambda frame, results: None,
        lambda frame, results: seen.append(frame.seq),
        stall_timeout_s=0.2,
    )
    pipeline.start()
    time.sleep(0.6)  # blocked at frame 15: stalled, nothing lost
    source.release.set()
    assert pipeline.wait(10.0)
    summary = pipeline.stop()
    assert summary.captured == 40 and summary.processed == 40 and summary.balanced
    assert seen == list(range(40))  # in order, each once


def test_accounting_balances_when_a_live_source_outruns_the_stages():
    source = ScriptedSource(n_frames=None, live=True)
    back_done = []

    def slow_back(frame, results):
        time.sleep(0.004)  # the back thread is the bottleneck: the ring drops, in order
        back_done.append(frame.seq)

    pipeline = _pipelined(source, lambda frame, results: None, slow_back, ring_capacity=2)
    pipeline.start()
    time.sleep(1.0)
    summary = pipeline.stop()
    assert summary.balanced, (summary.captured, summary.processed, summary.dropped)
    assert summary.dropped.get("ring_overwrite", 0) > 0
    assert back_done == sorted(back_done) and summary.processed == len(back_done)


def test_a_stage_error_on_either_thread_drops_that_frame_only():
    source = ScriptedSource(n_frames=30)

    def front(frame, results):
        if frame.seq == 5:
            raise ValueError("bad frame in front")

    def back(frame, results):
        if frame.seq == 9:
            raise ValueError("bad frame behind")

    pipeline = _pipelined(source, front, back)
    summary = pipeline.run()
    assert summary.processed == 28 and summary.balanced
    assert summary.dropped == {"stage_error:front": 1, "stage_error:back": 1}


def test_stop_returns_within_a_second_with_frames_in_flight():
    source = ScriptedSource(n_frames=None, live=True)
    entered = threading.Event()

    def slow_back(frame, results):
        entered.set()
        time.sleep(0.05)

    pipeline = _pipelined(source, lambda frame, results: None, slow_back)
    pipeline.start()
    assert entered.wait(5.0)
    time.sleep(0.2)
    t0 = time.monotonic()
    summary = pipeline.stop()
    assert time.monotonic() - t0 < 1.0
    assert summary.balanced, (summary.captured, summary.processed, summary.dropped)


def test_stop_ends_the_alignment_process_within_a_second():
    config = LiveConfig(
        source="synthetic",
        limits=RunLimits(align="process"),
        recognizer=RecognizerOptions(enabled=False),
    )
    run = build_live(config, EventBus([]))
    assert run.pipeline.front_count == 1  # the front thread waits on the child
    run.pipeline.start()
    deadline = time.monotonic() + 60
    while run.pipeline.processed < 20 and time.monotonic() < deadline:
        time.sleep(0.05)
    started = time.monotonic()
    summary = run.pipeline.stop()
    assert time.monotonic() - started < 1.0
    assert summary.balanced and summary.processed >= 20
    assert not run.analysis.tracker.alive
