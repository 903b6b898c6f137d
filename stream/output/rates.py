"""FrameRates: capture and processed frame rates over the last few frames.

The capture rate comes from the frames' own sequence numbers and capture stamps (``seq`` is
the source's index, so frames the ring dropped still count as captured); the processed rate
from when the worker handled them. Both are read by the HUD and the Prometheus exporter.
"""

from __future__ import annotations

import time

import numpy as np


class FrameRates:
    """Rates over a sliding window of ``window`` processed frames, preallocated.

    Example:
        >>> rates = FrameRates(window=4)
        >>> for i in range(4):
        ...     rates.add(seq=2 * i, t_mono_ns=i * 66_666_667, now_ns=i * 100_000_000)
        >>> round(rates.capture_fps), round(rates.processed_fps)
        (30, 10)
    """

    def __init__(self, window: int = 30) -> None:
        if window < 2:
            raise ValueError("a rate needs a window of at least 2 frames")
        self._seq = np.zeros(window, np.int64)  # (W,) source frame index
        self._captured_ns = np.zeros(window, np.int64)  # (W,) capture stamp
        self._processed_ns = np.zeros(window, np.int64)  # (W,) when the worker had it
        self._n = 0

    def add(self, seq: int, t_mono_ns: int, now_ns: int | None = None) -> None:
        i = self._n % self._seq.size
        self._seq[i], self._captured_ns[i] = seq, t_mono_ns
        self._processed_ns[i] = time.monotonic_ns() if now_ns is None else now_ns
        self._n += 1

    def _ends(self) -> tuple[int, int] | None:
        """Indices of the oldest and newest frame in the window, None below two frames."""
        if self._n < 2:
            return None
        size = self._seq.size
        newest = (self._n - 1) % size
        oldest = 0 if self._n <= size else self._n % size
        return oldest, newest

    @property
    def capture_fps(self) -> float:
        ends = self._ends()
        if ends is None:
            return 0.0
        old, new = ends
        span_ns = self._captured_ns[new] - self._captured_ns[old]
        return float((self._seq[new] - self._seq[old]) * 1e9 / span_ns) if span_ns > 0 else 0.0

    @property
    def processed_fps(self) -> float:
        ends = self._ends()
        if ends is None:
            return 0.0
        old, new = ends
        span_ns = self._processed_ns[new] - self._processed_ns[old]
        frames = min(self._n, self._seq.size) - 1
        return float(frames * 1e9 / span_ns) if span_ns > 0 else 0.0
