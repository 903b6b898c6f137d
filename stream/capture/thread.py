"""CaptureThread: reads a source into the FrameRing, stamps frames, watches for stalls.

- Each frame gets ``seq`` (the source's own index, continued across reconnects), the capture
  time ``t_mono_ns`` and the source's ``pts_s``.
- A watchdog reports ``source_stalled`` when a read has not returned for ``stall_timeout_s``.
- A live source that fails is closed and reopened with exponential backoff (``reconnected``);
  a file that fails ends the capture and keeps the error for the caller.
- A frame the source could not decode (``CorruptFrameError``) or that is not BGR uint8
  (H, W, 3) is skipped and counted as dropped (``corrupt`` / ``malformed``); the source goes on.
- ``stop()`` returns within ``join_timeout_s`` even when the source blocks in native code:
  the thread is a daemon and the blocked read is abandoned (a source with an ``interrupt()``
  method is asked to abort the read first).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

from stream.capture.guards import check_image
from stream.capture.ring import FrameRing
from stream.capture.sources import Source
from stream.errors import CorruptFrameError, SourceError, SourceReadError

StatusFn = Callable[[str, dict[str, Any]], None]


class CaptureThread(threading.Thread):
    """Producer thread: source → ring.

    Args:
        source: an opened source.
        ring: the ring to fill (its policy decides drop-oldest vs wait).
        on_status: ``(status, detail)`` callback for status events; called from this thread
            and the watchdog thread.
        max_frames: stop after this many captured frames (None: until the source ends).
        stall_timeout_s: a read longer than this is reported as ``source_stalled``.
        backoff_s: (first, longest) wait between reconnect attempts of a live source.
        max_reconnects: give up after this many failed attempts in a row (None: never).
    """

    def __init__(
        self,
        source: Source,
        ring: FrameRing,
        on_status: StatusFn | None = None,
        max_frames: int | None = None,
        stall_timeout_s: float = 2.0,
        backoff_s: tuple[float, float] = (0.5, 8.0),
        max_reconnects: int | None = None,
    ) -> None:
        super().__init__(name=f"capture:{source.name}", daemon=True)
        self.source = source
        self.ring = ring
        self.on_status = on_status or (lambda status, detail: None)
        self.max_frames = max_frames
        self.stall_timeout_s = stall_timeout_s
        self.backoff_s = backoff_s
        self.max_reconnects = max_reconnects
        self.error: SourceError | None = None  # why a non-live source ended early
        self.reconnects = 0
        self._stop_event = threading.Event()
        self._read_started_ns: int | None = None  # set while inside source.read()
        self._stall_reported = False
        self._seq_offset = 0
        self._last_seq = -1
        self._stamp_ns = 0
        self.captured = 0
        self._watchdog = threading.Thread(
            target=self._watch, name=f"watchdog:{source.name}", daemon=True
        )

    # -- thread body ----------------------------------------------------------------------
    def run(self) -> None:
        self._watchdog.start()
        try:
            while not self._stop_event.is_set():
                if self.max_frames is not None and self.captured >= self.max_frames:
                    break
                try:
                    frame = self._timed_read()
                except CorruptFrameError:
                    self.ring.reject("corrupt")
                    continue
                except SourceReadError as exc:
                    if not self.source.live:
                        self.error = exc
                        self.on_status("source_error", {"message": str(exc)})
                        break
                    if not self._reconnect(exc):
                        break
                    continue
                if frame is None:
                    break
                if check_image(frame.image) is not None:
                    self.ring.reject("malformed")
                    continue
                seq = self._seq_offset + frame.index
                if not self.ring.put(
                    frame.image,
                    seq=seq,
                    pts_s=frame.pts_s,
                    t_mono_ns=self._stamp_ns,
                    owned=frame.owned,
                    segment=self.reconnects,
                ):
                    break  # ring stopped
                self.captured += 1
                self._last_seq = seq
        finally:
            self.ring.close()

    def _timed_read(self):
        self._read_started_ns = time.monotonic_ns()
        try:
            return self.source.read()
        finally:
            # Stamp at arrival: the closest we get to the sensor time without driver support.
            self._stamp_ns = time.monotonic_ns()
            self._read_started_ns = None
            if self._stall_reported:
                self._stall_reported = False

    def _reconnect(self, cause: Exception) -> bool:
        """Close and reopen a live source with backoff. False when stopping or giving up."""
        self.on_status("source_error", {"message": str(cause)})
        delay, longest = self.backoff_s
        attempts = 0
        while not self._stop_event.is_set():
            # A dead device may fail to close; reopening is what matters.
            with contextlib.suppress(Exception):
                self.source.close()
            if self._stop_event.wait(delay):
                return False
            attempts += 1
            try:
                self.source.open()
            except SourceError as exc:
                if self.max_reconnects is not None and attempts >= self.max_reconnects:
                    self.error = exc
                    return False
                delay = min(delay * 2, longest)
                continue
            self.reconnects += 1
            # Indices restart at 0 on a reopened source; keep seq increasing across the gap.
            self._seq_offset = self._last_seq + 1
            self.on_status("reconnected", {"attempts": attempts, "reconnects": self.reconnects})
            return True
        return False

    def _watch(self) -> None:
        """Report a read that has been blocked for longer than the stall timeout (once)."""
        period = min(0.25, self.stall_timeout_s / 4)
        wait_s = period
        while not self._stop_event.wait(wait_s):
            wait_s = period
            started = self._read_started_ns
            if started is None or self._stall_reported:
                continue
            blocked_s = (time.monotonic_ns() - started) / 1e9
            if blocked_s >= self.stall_timeout_s:
                self._stall_reported = True
                self.on_status("source_stalled", {"blocked_s": round(blocked_s, 2)})
            else:  # wake at the deadline itself, not up to a period after it
                wait_s = min(period, self.stall_timeout_s - blocked_s + 1e-3)
        # exits with the stop event; the capture loop itself may still be blocked in read()

    # -- control --------------------------------------------------------------------------
    def finish_reading(self) -> None:
        """Read no more frames; those already in the ring stay there to be processed."""
        self._stop_event.set()

    def stop(self, join_timeout_s: float = 1.0) -> bool:
        """Ask the thread to finish; True if it did within the timeout."""
        self._stop_event.set()
        self.ring.stop()
        interrupt = getattr(self.source, "interrupt", None)
        if interrupt is not None:
            interrupt()
        if self.is_alive():
            self.join(join_timeout_s)
        return not self.is_alive()

    @property
    def stopping(self) -> bool:
        return self._stop_event.is_set()
