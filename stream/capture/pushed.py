"""PushedSource: frames handed in by someone else (the browser webcam of the Gradio preview).

The producer calls ``push(image, t_arrival_s)`` from its own thread; the capture thread reads
them in order. The media time of a frame (``pts_s``) is its arrival time since the first frame,
so the features and the decoder, which work in seconds, follow whatever rate the frames come
at (a browser sends 7-19 frames/s, unevenly). It is a live source: when the pipeline falls
behind, the ring drops the oldest frame and counts it; ``push`` itself never blocks.

Example:
    source = PushedSource()
    pipeline = build_live(LiveConfig(source=source), bus).pipeline
    pipeline.start()
    source.push(frame_bgr, time.monotonic())   # from the web handler, per frame
    source.end()                                # then pipeline.stop()
"""

from __future__ import annotations

import threading
from collections import deque

import numpy as np

from stream.contracts import SourceFrame
from stream.errors import SourceReadError


class PushedSource:
    """A live source fed by ``push``; ``read`` blocks until a frame or ``end``.

    Args:
        name: for messages and the ``started`` line.
        backlog: frames held while the capture thread is busy; beyond it the oldest is
            replaced and counted in ``counters()["overflow"]`` (the ring behind it drops too).
    """

    live = True

    def __init__(self, name: str = "browser webcam", backlog: int = 4) -> None:
        self.name = name
        self._frames: deque[tuple[np.ndarray, float, int]] = deque()  # image, t, index
        self._backlog = backlog
        self._cond = threading.Condition()
        self._open = False
        self._ended = False
        self._t0: float | None = None
        self.pushed = 0
        self._overflow = 0

    @property
    def fps(self) -> float | None:
        return None  # whatever the browser manages; measured, not declared

    def open(self) -> None:
        with self._cond:
            self._open, self._ended = True, False

    def push(self, image: np.ndarray, t_arrival_s: float) -> int | None:
        """Hand over a BGR (H, W, 3) uint8 frame that arrived at ``t_arrival_s`` (monotonic
        seconds); returns the index (``Frame.seq``) it gets. The array is kept, not copied: do
        not write to it afterwards. None when the source is not open (nothing takes it)."""
        with self._cond:
            if not self._open or self._ended:
                return None
            if len(self._frames) >= self._backlog:
                self._frames.popleft()  # its index is skipped: the pipeline sees the gap
                self._overflow += 1
            index = self.pushed
            self._frames.append((image, t_arrival_s, index))
            self.pushed += 1
            self._cond.notify_all()
        return index

    def read(self) -> SourceFrame | None:
        with self._cond:
            while not self._frames and not self._ended:
                if not self._open:
                    raise SourceReadError(f"{self.name}: not open")
                self._cond.wait(0.5)
            if not self._frames:
                return None  # ended and drained
            image, t_arrival_s, index = self._frames.popleft()
        if self._t0 is None:
            self._t0 = t_arrival_s
        return SourceFrame(image, pts_s=t_arrival_s - self._t0, index=index, owned=True)

    def end(self) -> None:
        """No more frames: ``read`` returns what is queued, then None (the capture ends)."""
        with self._cond:
            self._ended = True
            self._cond.notify_all()

    def close(self) -> None:
        self.end()
        with self._cond:
            self._open = False
            self._frames.clear()

    def counters(self) -> dict[str, int]:
        return {"pushed": self.pushed, "overflow": self._overflow}

    def __enter__(self) -> PushedSource:
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()
