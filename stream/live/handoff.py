"""HandOff: the second stage thread of a pipelined run, and the bounded queue that feeds it.

The front thread (``Pipeline``'s worker) runs the first stages of frame t+1 while this thread
runs the rest on frame t: with alignment in front and the features and spotter behind, the two
halves overlap on two cores wherever their native code lets go of the GIL (OpenCV, the Numba
kernels, ONNX Runtime, PyAV's decoder on the capture thread). Frames stay in order (one FIFO,
one consumer), so the events and feature rows equal a sequential run's.

Each frame the front hands over is, in the end, either completed (``on_done``) or counted
as dropped (``on_dropped``): the pipeline's ``captured == processed + Σ dropped`` holds.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

from stream.contracts import Frame, FrameResults

_END = None  # the front's last put: no more frames


class HandOff:
    """A thread running ``run_back(frame, results)`` on the frames ``put`` to it, in order.

    Args:
        run_back: the back stages on one frame; True when they all ran (no stage failed).
        on_done: called after ``run_back`` with (frame, whether it completed).
        on_discard: called instead for a frame discarded at a stop (never run).
        capacity: frames waiting between the two threads (``put`` blocks beyond it).
    """

    def __init__(
        self,
        run_back: Callable[[Frame, FrameResults], bool],
        on_done: Callable[[Frame, bool], None],
        on_discard: Callable[[Frame], None],
        capacity: int = 4,
    ) -> None:
        self._run_back = run_back
        self._on_done = on_done
        self._on_discard = on_discard
        self._queue: queue.Queue[tuple[Frame, FrameResults] | None] = queue.Queue(capacity)
        self._discard = threading.Event()  # a stop that does not wait for queued frames
        self._thread = threading.Thread(target=self._work, name="pipeline-back", daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def in_flight(self) -> int:
        """Frames handed over and not yet run (approximate while the threads run)."""
        return self._queue.qsize()

    def put(self, frame: Frame, results: FrameResults) -> None:
        """Hand a frame over; waits while the queue is full (unless discarding: then the
        frame is discarded at once)."""
        while True:
            if self._discard.is_set():
                self._on_discard(frame)
                return
            try:
                self._queue.put((frame, results), timeout=0.05)
                return
            except queue.Full:
                continue

    def finish(self, discard: bool, timeout_s: float | None = None) -> bool:
        """No more frames. ``discard``: count what is still queued as dropped instead of
        running it. Waits for the thread up to ``timeout_s``; True when it has ended."""
        if discard:
            self._discard.set()
        while self._thread.is_alive():
            try:
                self._queue.put(_END, timeout=0.05)
                break
            except queue.Full:
                if timeout_s is not None and timeout_s <= 0:
                    self._discard.set()  # out of time: the rest is discarded, not waited for
                timeout_s = None if timeout_s is None else timeout_s - 0.05
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    def discard_now(self) -> None:
        """From here on, count queued frames as dropped instead of running them."""
        self._discard.set()

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is _END:
                return
            frame, results = item
            if self._discard.is_set():
                self._on_discard(frame)
                continue
            completed = self._run_back(frame, results)
            self._on_done(frame, completed)
