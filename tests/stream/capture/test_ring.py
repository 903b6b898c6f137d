"""FrameRing: overwrite and blocking semantics, leases, accounting, concurrency."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.capture.ring import FrameRing

SHAPE = (4, 6, 3)


def image_of(seq: int) -> np.ndarray:
    return np.full(SHAPE, seq % 251, np.uint8)


def test_block_policy_delivers_everything_in_order():
    ring = FrameRing(3, "block", SHAPE)
    for seq in range(3):
        assert ring.put(image_of(seq), seq=seq, pts_s=seq / 30)
    ring.close()
    got = []
    while (frame := ring.get(timeout=0.5)) is not None:
        got.append((frame.seq, frame.pts_s, int(frame.image[0, 0, 0])))
    assert got == [(0, 0.0, 0), (1, 1 / 30, 1), (2, 2 / 30, 2)]
    stats = ring.stats()
    assert (stats.captured, stats.delivered, stats.dropped_total) == (3, 3, 0)


def test_drop_oldest_overwrites_and_counts():
    ring = FrameRing(3, "drop_oldest", SHAPE)
    for seq in range(7):
        assert ring.put(image_of(seq), seq=seq, pts_s=None)
    stats = ring.stats()
    assert stats.dropped == {"ring_overwrite": 4}
    assert [ring.get(0.1).seq for _ in range(3)] == [4, 5, 6]
    assert ring.stats().captured == ring.stats().delivered + ring.stats().dropped_total


def test_leased_frame_is_never_overwritten():
    ring = FrameRing(2, "drop_oldest", SHAPE)
    ring.put(image_of(10), seq=10, pts_s=None)
    leased = ring.get(0.1)
    for seq in range(11, 40):  # far more than the capacity while the consumer holds frame 10
        ring.put(image_of(seq), seq=seq, pts_s=None)
    assert leased.seq == 10 and np.all(leased.image == 10)


def test_stop_counts_unread_frames_and_balances():
    ring = FrameRing(5, "block", SHAPE)
    for seq in range(4):
        ring.put(image_of(seq), seq=seq, pts_s=None)
    ring.get(0.1)
    assert ring.stop() == 3
    stats = ring.stats()
    assert stats.dropped == {"unprocessed_at_stop": 3}
    assert stats.captured == stats.delivered + stats.dropped_total
    assert ring.get(0.1) is None
    assert not ring.put(image_of(9), seq=9, pts_s=None)  # nothing is taken after stop


def test_stop_wakes_a_blocked_producer_within_a_second():
    ring = FrameRing(1, "block", SHAPE)
    ring.put(image_of(0), seq=0, pts_s=None)
    result = {}

    def produce():
        result["taken"] = ring.put(image_of(1), seq=1, pts_s=None)  # blocks: ring is full

    producer = threading.Thread(target=produce)
    producer.start()
    time.sleep(0.2)
    assert producer.is_alive()
    t0 = time.monotonic()
    ring.stop()
    producer.join(1.0)
    assert not producer.is_alive() and time.monotonic() - t0 < 1.0
    assert result["taken"] is False
    stats = ring.stats()
    assert stats.captured == stats.delivered + stats.dropped_total


def test_new_shape_reallocates_slot():
    ring = FrameRing(2, "block", SHAPE)
    big = np.full((8, 8, 3), 7, np.uint8)
    ring.put(big, seq=0, pts_s=None)
    assert ring.get(0.1).image.shape == (8, 8, 3)


@pytest.mark.parametrize(
    "capacity, policy",
    [
        (0, "block"),  # no slots at all
        (2, "lifo"),  # unknown policy
    ],
)
def test_bad_arguments(capacity, policy):
    with pytest.raises(ValueError):
        FrameRing(capacity, policy)


@settings(max_examples=25, deadline=None)
@given(
    capacity=st.integers(1, 6),
    policy=st.sampled_from(["block", "drop_oldest"]),
    n_frames=st.integers(1, 120),
    consumer_pauses=st.lists(st.sampled_from([0.0, 0.0, 0.0005, 0.002]), min_size=1, max_size=8),
)
def test_concurrent_producer_consumer(capacity, policy, n_frames, consumer_pauses):
    ring = FrameRing(capacity, policy, SHAPE)

    def produce():
        for seq in range(n_frames):
            ring.put(image_of(seq), seq=seq, pts_s=seq / 30)
        ring.close()

    producer = threading.Thread(target=produce)
    producer.start()
    seqs = []
    while (frame := ring.get(timeout=2.0)) is not None:
        # the pixels belong to this seq: no slot was overwritten under the consumer
        assert np.all(frame.image == frame.seq % 251)
        seqs.append(frame.seq)
        time.sleep(consumer_pauses[len(seqs) % len(consumer_pauses)])
    producer.join(2.0)
    stats = ring.stats()
    assert seqs == sorted(set(seqs))  # strictly increasing: in order, never twice
    assert stats.captured == n_frames == stats.delivered + stats.dropped_total
    if policy == "block":
        assert seqs == list(range(n_frames)) and stats.dropped_total == 0
    else:
        assert seqs[-1] == n_frames - 1  # the newest frame always gets through


def test_several_leases_stay_valid_until_each_is_released():
    ring = FrameRing(2, "block", (2, 2, 3), leases=3)
    for seq in range(4):
        if seq < 2:
            ring.put(np.full((2, 2, 3), seq, np.uint8), seq=seq, pts_s=None)
    first, second = ring.get(timeout=0.1), ring.get(timeout=0.1)
    ring.put(np.full((2, 2, 3), 2, np.uint8), seq=2, pts_s=None)
    ring.put(np.full((2, 2, 3), 3, np.uint8), seq=3, pts_s=None)  # a free slot, not a lease
    assert first.image[0, 0, 0] == 0 and second.image[0, 0, 0] == 1  # nothing overwritten
    third = ring.get(timeout=0.1)
    assert ring.get(timeout=0.05) is None  # every lease taken: wait for a release
    ring.release_frame(second)  # out of order is fine
    fourth = ring.get(timeout=0.1)
    assert (third.seq, fourth.seq) == (2, 3) and first.image[0, 0, 0] == 0
    stats = ring.stats()
    assert stats.captured == 4 and stats.delivered == 4
