"""The fault spec parser and the fault source's own behaviour (stream/capture/faults.py); the
pipeline's
answers to each fault are in tests/system/test_faults.py."""

from __future__ import annotations

import numpy as np
import pytest

from stream.capture.faults import Fault, FaultySource, parse_faults, split_spec
from stream.capture.sources import open_source
from stream.errors import CorruptFrameError, SourceError, SourceReadError
from stream.live.builder import bare_pipeline
from stream.output.events import EventBus


def test_spec_round_trip():
    spec = "faults:stall@150+3s,disconnect@300+30=480x360,rate@9+6=15:synthetic:3"
    faults, inner = split_spec(spec)
    assert inner == "synthetic:3"
    assert faults == [
        Fault("rate", 9, 6.0, 15.0),
        Fault("stall", 150, 3.0),
        Fault("disconnect", 300, 30.0, (480, 360)),
    ]


def test_open_source_builds_a_drill():
    source = open_source("faults:freeze@10+5:synthetic:2")
    assert isinstance(source, FaultySource) and source.live and source.inner.config.seed == 2


@pytest.mark.parametrize(
    "realtime, policy",
    [
        (True, "drop_oldest"),  # paced like a camera: a slow analysis drops the oldest frame
        (False, "block"),  # an unpaced scene waits: the accounting is the same on any machine
    ],
)
def test_a_drill_drops_frames_only_over_a_paced_source(realtime, policy):
    source = open_source("faults:freeze@10+5:synthetic:2", realtime=realtime)
    assert source.live  # it reconnects either way
    assert bare_pipeline(source, EventBus()).ring.policy == policy


@pytest.mark.parametrize(
    "spec, message",
    [
        ("faults:freeze@10+5", "expected faults:FAULT"),  # no inner source
        ("faults::synthetic", "no fault given"),  # no fault
        ("faults:melt@10+5:synthetic", "KIND one of"),  # unknown kind
        ("faults:freeze@10:synthetic", "needs a length"),  # a window without a length
        ("faults:stall@10+3:synthetic", "lasts seconds"),  # a stall in frames
        ("faults:resize@10=big:synthetic", "480x360"),  # a size that is not WxH
        ("faults:rate@10+5:synthetic", "needs =FPS"),  # a rate without its value
    ],
)
def test_bad_specs_say_what_is_wrong(spec, message):
    with pytest.raises(SourceError, match=message):
        open_source(spec)


class Counting:
    """A tiny inner source: frame i is filled with i, pts i / 10."""

    name, live, fps = "counting", False, 10.0

    def __init__(self, n=40):
        self.n, self.i = n, 0

    def open(self):
        pass

    def read(self):
        from stream.contracts import SourceFrame

        if self.i >= self.n:
            return None
        frame = SourceFrame(np.full((20, 20, 3), self.i, np.uint8), self.i / 10, self.i)
        self.i += 1
        return frame

    def close(self):
        pass

    def counters(self):
        return {}


def drain(source):
    frames = []
    while True:
        try:
            frame = source.read()
        except CorruptFrameError:
            frames.append("corrupt")
            continue
        except SourceReadError:
            frames.append("error")
            source.close()
            while True:
                try:
                    source.open()
                    break
                except SourceError:
                    frames.append("reopen failed")
            continue
        if frame is None:
            return frames
        frames.append(frame)


def test_windows_and_points_land_on_the_inner_frames():
    faults = parse_faults("corrupt@2+2,freeze@6+3,drop@12+2,pts_swap@16+2,disconnect@20+3=32x24")
    source = FaultySource(Counting(26), faults)
    source.open()
    out = drain(source)
    real = [f for f in out if not isinstance(f, str)]
    values = [int(f.image[0, 0, 0]) for f in real]
    assert out[2:4] == ["corrupt", "corrupt"]
    assert values[:10] == [0, 1, 4, 5, 6, 6, 6, 9, 10, 11]  # corrupt 2-3, frozen 7-8 show 6
    assert values[10:] == [14, 15, 16, 17, 18, 19, 23, 24, 25]  # drop 12-13, unplugged 20-22
    assert [round(f.pts_s, 1) for f in real[12:14]] == [1.7, 1.6]  # a swapped pair
    assert out.count("reopen failed") == 2 and real[-1].image.shape == (24, 32, 3)
    indices = [f.index for f in real]
    assert indices[:12] == [0, 1, 4, 5, 6, 7, 8, 9, 10, 11, 14, 15]  # corrupt+drop skip
    assert indices[-3:] == [0, 1, 2]  # a reopened device counts from 0
    assert source.counters() == {
        "injected_corrupt": 2,
        "injected_disconnect": 1,
        "injected_drop": 2,
        "injected_freeze": 3,
        "injected_pts_swap": 2,
    }
