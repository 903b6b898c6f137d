"""FrameRates: capture rate from the frames' own indices and stamps, processed rate from the
worker's clock."""

from __future__ import annotations

import pytest

from stream.output.rates import FrameRates


@pytest.mark.parametrize(
    "seq_step, capture_ns, process_ns, capture_fps, processed_fps",
    [
        (1, 33_333_333, 33_333_333, 30.0, 30.0),  # keeping up with a 30 fps camera
        (3, 33_333_333, 100_000_000, 30.0, 10.0),  # ring drops 2 of 3: camera 30, analysed 10
        (1, 100_000_000, 50_000_000, 10.0, 20.0),  # a file replayed faster than its clock
    ],
)
def test_rates(seq_step, capture_ns, process_ns, capture_fps, processed_fps):
    rates = FrameRates(window=10)
    for i in range(25):  # more than the window: the ring wraps
        rates.add(i * seq_step, i * seq_step * capture_ns, now_ns=i * process_ns)
    assert rates.capture_fps == pytest.approx(capture_fps)
    assert rates.processed_fps == pytest.approx(processed_fps)


def test_no_rate_before_two_frames():
    rates = FrameRates()
    assert rates.capture_fps == rates.processed_fps == 0.0
    rates.add(0, 0, now_ns=0)
    assert rates.capture_fps == rates.processed_fps == 0.0


def test_window_must_hold_two_frames():
    with pytest.raises(ValueError):
        FrameRates(window=1)
