"""Frame checks, timestamp repair and freeze detection (stream/capture/guards.py)."""

from __future__ import annotations

import numpy as np
import pytest

from stream.capture.guards import FreezeDetector, MediaClock, check_image


@pytest.mark.parametrize(
    "image, problem",
    [
        (np.zeros((48, 64, 3), np.uint8), None),  # a BGR frame
        (np.zeros((48, 64), np.uint8), "shape"),  # grey, no channel axis
        (np.zeros((48, 64, 4), np.uint8), "shape"),  # BGRA
        (np.zeros((48, 64, 3), np.float32), "dtype"),  # float pixels
        (np.zeros((0, 64, 3), np.uint8), "empty"),  # an empty buffer
        (b"\x00" * 30, "not an array"),  # raw bytes from a broken decoder
    ],
)
def test_check_image(image, problem):
    result = check_image(image)
    assert result is None if problem is None else problem in result


@pytest.mark.parametrize(
    "pts, want, non_monotonic, rebased",
    [
        ([0.0, 0.1, 0.2, 0.3], [0.0, 0.1, 0.2, 0.3], 0, 0),  # clean
        ([0.0, 0.1, 0.1, 0.1, 0.4], [0.0, 0.1, 0.101, 0.102, 0.4], 2, 0),  # repeated
        ([0.0, 0.2, 0.1, 0.3], [0.0, 0.2, 0.201, 0.3], 1, 0),  # a swapped pair
        ([5.0, 5.1, 0.0, 0.1], [5.0, 5.1, 5.2, 5.3], 1, 1),  # a restarted clock: rebased
        ([None, 0.1, None], [None, 0.1, None], 0, 0),  # no timestamps: the capture clock
    ],
)
def test_media_clock_only_moves_forward(pts, want, non_monotonic, rebased):
    clock = MediaClock(frame_s=0.1)
    got = [clock.repair(t) for t in pts]
    assert got == pytest.approx(want)
    assert clock.stats.as_dict() == {"non_monotonic": non_monotonic, "rebased": rebased}


def test_media_clock_rebases_a_small_jump_back_after_a_reconnect():
    clock = MediaClock(frame_s=0.1)
    assert [clock.repair(t) for t in (0.0, 0.1, 0.2)] == pytest.approx([0.0, 0.1, 0.2])
    clock.new_timeline()  # the device restarted its clock at 0
    assert [clock.repair(t) for t in (0.0, 0.1)] == pytest.approx([0.3, 0.4])
    assert clock.stats.rebased == 1


def test_freeze_detector_flags_exact_repeats_only():
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (4, 48, 64, 3), dtype=np.uint8)
    detector = FreezeDetector()
    assert not detector.repeated(frames[0])
    assert detector.repeated(frames[0].copy())  # the same pixels again
    nearly = frames[0].copy()
    nearly[47, 63, 2] ^= 1  # one bit in the last pixel: a real new frame
    assert not detector.repeated(nearly)
    assert not detector.repeated(frames[1])
    assert not detector.repeated(frames[1][:40])  # another size is never a repeat
    assert detector.frozen == 1
