"""FrameRing: a fixed set of preallocated frame slots between the capture thread and the pipeline.

Two policies (design.md, "Data flow"):
- ``drop_oldest`` for live sources: the camera never waits; when every slot holds an unread
  frame the oldest unread one is overwritten and counted under ``dropped["ring_overwrite"]``.
- ``block`` for files and the synthetic source: nothing is lost; the producer waits for a slot.

The consumer leases one slot at a time: a ``Frame`` returned by ``get`` stays valid until the
next ``get`` (or ``release``), so the producer never writes into pixels being analysed. A
pipelined consumer (stages on two threads) holds up to ``leases`` frames at once and gives
each back with ``release_frame`` when its last stage is done.
Accounting holds at every quiescent point: ``captured == delivered + unread + Σ dropped``.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from stream.contracts import Frame

POLICIES = ("drop_oldest", "block")


@dataclass
class RingStats:
    """A snapshot of the ring's frame accounting."""

    captured: int = 0
    delivered: int = 0
    unread: int = 0
    dropped: dict[str, int] = field(default_factory=dict)

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values())


class FrameRing:
    """Fixed-capacity ring of frames with sequence numbers and drop counters.

    Args:
        capacity: unread frames it can hold (one more slot is kept for the consumer's lease).
        policy: ``"drop_oldest"`` (live) or ``"block"`` (files, synthetic).
        frame_shape: (H, W, 3) to preallocate; slots are (re)allocated on a new shape.
        leases: frames the consumer may hold at once. 1: each ``get`` releases the previous
            frame. More: ``get`` keeps them all and ``release_frame`` gives one back (a
            ``get`` with every lease taken waits for a release).

    Example:
        >>> ring = FrameRing(4, "block", (2, 2, 3))
        >>> ring.put(np.zeros((2, 2, 3), np.uint8), seq=0, pts_s=0.0)
        True
        >>> ring.get(timeout=0.1).seq
        0
    """

    def __init__(
        self,
        capacity: int = 8,
        policy: str = "block",
        frame_shape: tuple[int, int, int] | None = None,
        leases: int = 1,
    ) -> None:
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        if policy not in POLICIES:
            raise ValueError(f"policy must be one of {POLICIES}, got {policy!r}")
        if leases < 1:
            raise ValueError("leases must be >= 1")
        self.capacity = capacity
        self.policy = policy
        self.leases = leases
        n_slots = capacity + leases  # + the consumer's leases
        empty = np.empty((0, 0, 3), np.uint8)
        self._images = [
            np.empty(frame_shape, np.uint8) if frame_shape else empty for _ in range(n_slots)
        ]
        self._meta: list[tuple[int, int, float | None, int]] = [(-1, 0, None, 0)] * n_slots
        self._free = list(range(n_slots))  # slots holding nothing unread and not leased
        self._unread: list[int] = []  # FIFO of slot indices, oldest first
        self._leased: list[int] = []  # slots the consumer holds, oldest first
        self._cond = threading.Condition()
        self._closed = False  # producer finished: consumer drains, then gets None
        self._stopped = False  # shutdown: everyone returns at once
        self._captured = 0
        self._delivered = 0
        self._dropped: Counter[str] = Counter()

    # -- producer -------------------------------------------------------------------------
    def put(
        self,
        image: np.ndarray,
        seq: int,
        pts_s: float | None,
        t_mono_ns: int | None = None,
        owned: bool = False,
        segment: int = 0,
    ) -> bool:
        """Put a frame into a slot. Returns False (frame not taken) once the ring is stopped.

        ``owned=True`` hands the array over (the caller never touches it again): the slot keeps
        it instead of copying, which saves a full-frame copy for decoders that allocate a fresh
        array per frame anyway (PyAV). Otherwise the pixels are copied into the slot's buffer.
        """
        if t_mono_ns is None:
            t_mono_ns = time.monotonic_ns()
        with self._cond:
            if self._stopped or self._closed:
                return False
            self._captured += 1
            slot = self._claim_slot()
            if slot is None:  # stopped while waiting for space
                self._dropped["stopped_while_waiting"] += 1
                return False
        # The copy runs outside the lock: the slot is ours alone until it is published.
        if owned:
            self._images[slot] = image
        else:
            buf = self._images[slot]
            if buf.shape != image.shape:
                buf = self._images[slot] = np.empty_like(image)
            np.copyto(buf, image)
        with self._cond:
            if self._stopped:  # stop() ran during the copy: account for the frame, drop it
                self._dropped["unprocessed_at_stop"] += 1
                self._free.append(slot)
                return False
            self._meta[slot] = (seq, t_mono_ns, pts_s, segment)
            self._unread.append(slot)
            self._cond.notify_all()
        return True

    def _claim_slot(self) -> int | None:
        # At most `capacity` unread frames; the extra slots exist only for the consumer's leases.
        while len(self._unread) >= self.capacity or not self._free:
            if self.policy == "drop_oldest" and self._unread:
                self._dropped["ring_overwrite"] += 1
                return self._unread.pop(0)
            self._cond.wait(0.1)
            if self._stopped:
                return None
        return self._free.pop()

    def close(self) -> None:
        """The producer has no more frames: the consumer drains what is left, then gets None."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    # -- consumer -------------------------------------------------------------------------
    def get(self, timeout: float | None = None) -> Frame | None:
        """Next unread frame, oldest first; None on timeout, after close+drain, or after stop.

        The previous frame's slot is released first, so its pixels may be overwritten.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            if self.leases == 1:
                self._release_locked()
            while not self._unread or len(self._leased) >= self.leases:
                if self._stopped or (self._closed and not self._unread):
                    return None
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._cond.wait(remaining if remaining is not None else 0.1)
            slot = self._unread.pop(0)
            self._leased.append(slot)
            self._delivered += 1
            self._cond.notify_all()
            seq, t_mono_ns, pts_s, segment = self._meta[slot]
            return Frame(seq, t_mono_ns, pts_s, self._images[slot], segment)

    def release(self) -> None:
        """Give every leased slot back before the next ``get`` (optional)."""
        with self._cond:
            self._release_locked()
            self._cond.notify_all()

    def release_frame(self, frame: Frame) -> None:
        """Give back the slot holding ``frame`` (a frame already given back is ignored)."""
        with self._cond:
            for i, slot in enumerate(self._leased):
                if self._images[slot] is frame.image:
                    self._free.append(self._leased.pop(i))
                    self._cond.notify_all()
                    return

    def _release_locked(self) -> None:
        self._free.extend(self._leased)
        self._leased.clear()

    # -- shutdown and accounting ----------------------------------------------------------
    def stop(self, discard_cause: str = "unprocessed_at_stop") -> int:
        """Wake every waiter; frames still unread are counted as dropped. Returns that count."""
        with self._cond:
            self._stopped = True
            n_unread = len(self._unread)
            if n_unread:
                self._dropped[discard_cause] += n_unread
                self._free.extend(self._unread)
                self._unread.clear()
            self._cond.notify_all()
            return n_unread

    def reject(self, cause: str) -> None:
        """Count a frame the source delivered that never entered a slot (corrupt, malformed):
        it is captured and dropped at once, so the accounting still balances."""
        with self._cond:
            self._captured += 1
            self._dropped[cause] += 1

    def count_drop(self, cause: str, n: int = 1) -> None:
        """Record frames lost by a cause outside the ring (they were counted as captured)."""
        with self._cond:
            self._dropped[cause] += n

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def stopped(self) -> bool:
        return self._stopped

    def stats(self) -> RingStats:
        with self._cond:
            return RingStats(
                captured=self._captured,
                delivered=self._delivered,
                unread=len(self._unread),
                dropped=dict(self._dropped),
            )
