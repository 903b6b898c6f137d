"""PushedSource: pushed frames reach the pipeline in order, timed by their arrival."""

from __future__ import annotations

import threading

import numpy as np

from stream.capture.pushed import PushedSource
from stream.live.builder import bare_pipeline
from stream.live.pipeline import Stage
from stream.output.events import EventBus


def _image(value: int) -> np.ndarray:
    return np.full((24, 32, 3), value, np.uint8)


def test_every_pushed_frame_is_analysed_at_its_arrival_time():
    source = PushedSource(backlog=64)
    seen: list[tuple[int, float, int]] = []
    stage = Stage("record", lambda f, r: seen.append((f.seq, f.t_s, int(f.image[0, 0, 0]))))
    pipeline = bare_pipeline(source, EventBus(), [stage], ring_capacity=64)
    assert source.push(_image(1), 10.0) is None  # nothing runs yet: refused
    pipeline.start()
    # Uneven arrivals, like a browser: 70, 130, 55 ... ms apart.
    arrivals = 100.0 + np.cumsum([0.0, 0.07, 0.13, 0.055, 0.09, 0.2, 0.06])
    for k, t in enumerate(arrivals):
        assert source.push(_image(k), float(t)) == k
    source.end()
    assert pipeline.wait(5.0)
    summary = pipeline.stop()
    assert [s[0] for s in seen] == list(range(len(arrivals)))
    assert [s[2] for s in seen] == list(range(len(arrivals)))  # each frame's own pixels
    np.testing.assert_allclose([s[1] for s in seen], arrivals - arrivals[0])
    assert summary.balanced and summary.processed == len(arrivals)


def test_overflow_drops_the_oldest_and_leaves_a_gap():
    source = PushedSource(backlog=2)
    source.open()
    for k in range(5):
        assert source.push(_image(k), float(k)) == k
    first = source.read()
    assert first.index == 3 and first.pts_s == 0.0  # 0-2 were replaced: seq jumps (a gap)
    assert source.counters() == {"pushed": 5, "overflow": 3}


def test_end_wakes_a_blocked_read():
    source = PushedSource()
    source.open()
    result: list = []
    reader = threading.Thread(target=lambda: result.append(source.read()))
    reader.start()
    source.end()
    reader.join(2.0)
    assert not reader.is_alive() and result == [None]
