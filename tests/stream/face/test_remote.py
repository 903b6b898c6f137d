"""AlignProcess against the FaceTracker it wraps: identical AlignedFaces on a real video, a
frame size that changes, a child that dies or cannot start, a prompt close."""

from __future__ import annotations

import os
import signal
import time

import cv2
import numpy as np
import pytest

from stream.capture.sources import AVSource
from stream.face.align import FaceTracker
from stream.face.remote import AlignProcess, AlignProcessError
from tests.helpers import fixtures_root

FIELDS = ("seq", "ok", "reason", "redetected", "n_faces", "change", "t_s")
ARRAYS = ("face", "landmarks", "landmarks_px", "transform")


def frames(n: int) -> list:
    root = fixtures_root()
    if root is None:
        pytest.skip("fixture videos not found (../shared/fixtures or $MEXLIVE_FIXTURES)")
    out = []
    with AVSource(root / "videos" / "st_rd2.mp4") as source:
        while len(out) < n and (frame := source.read()) is not None:
            out.append(frame)
    return out


def assert_same(inline, remote) -> None:
    for name in FIELDS:
        assert getattr(inline, name) == getattr(remote, name), name
    for name in ARRAYS:
        a, b = getattr(inline, name), getattr(remote, name)
        assert (a is None) == (b is None), name
        if a is not None:
            np.testing.assert_array_equal(a, b)  # bit for bit: the same code on the same pixels


@pytest.fixture
def remote():
    process = AlignProcess()
    yield process
    process.close()


def test_the_child_gives_the_aligned_faces_of_the_tracker_bit_for_bit(remote):
    video = frames(60)
    tracker = FaceTracker()
    found = 0
    for i, frame in enumerate(video):
        image = frame.image
        if i >= 40:  # a smaller frame from here on: the shared slot is reused, then resized
            image = np.ascontiguousarray(cv2.resize(image, (300, 300)))
        if i == 30:
            tracker.reset()
            remote.reset()
        t_ns = i * 40_000_000
        inline = tracker.update(image, i, t_ns, i / 25)
        assert_same(inline, remote.update(image, i, t_ns, i / 25))
        found += inline.ok
    assert found > 40, "the clip's face should be found in most frames"
    bigger = np.zeros((720, 1280, 3), np.uint8)  # larger than the slot: a new one
    assert_same(tracker.update(bigger, 60, 0, 2.4), remote.update(bigger, 60, 0, 2.4))


def test_a_dead_child_is_an_error_on_the_next_update_and_close_is_prompt(remote):
    image = frames(1)[0].image
    remote.update(image, 0, 0, 0.0)
    os.kill(remote.pid, signal.SIGKILL)
    with pytest.raises(AlignProcessError, match="died"):
        for i in range(1, 50):  # the kill lands within a few frames
            remote.update(image, i, 0, i / 25)
    started = time.monotonic()
    remote.close()
    assert time.monotonic() - started < 1.0 and not remote.alive


def test_a_child_that_cannot_start_says_why():
    process = AlignProcess(config="not a TrackerConfig")
    with pytest.raises(AlignProcessError, match="could not start: AttributeError"):
        process.wait_ready()
    assert not process.alive


def test_close_ends_a_child_that_is_still_loading():
    process = AlignProcess()
    started = time.monotonic()
    process.close()
    assert time.monotonic() - started < 1.0 and not process.alive
