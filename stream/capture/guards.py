"""Guards between a source and the analysis: what a real camera or network gets wrong.

- ``check_image``: a frame that is not BGR uint8 (H, W, 3) (a broken decoder, a driver that
  hands back a grey or an empty buffer) is rejected at the capture thread and counted.
- ``MediaClock``: timestamps that repeat or go backwards (reordered packets, a stream whose
  clock restarted) are counted and repaired so that media time only moves forward; frames keep
  the order in which they were captured (the capture clock), never a re-sort by timestamp.
- ``FreezeDetector``: a frame identical to the one before it is not new light on the sensor
  (a frozen encoder, a stuck driver buffer): it is never analysed, because a repeated frame is a
  fabricated frame and a fabricated frame makes fabricated motion (design.md, "Data flow").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# A backwards jump longer than this many frames is a restarted clock (rebase), not a
# reordered packet.
REBASE_AFTER_FRAMES = 2.5
# Smallest step a repaired timestamp moves forward by (the real spacing is unknown).
MIN_STEP_S = 1e-3


def check_image(image: object) -> str | None:
    """Why ``image`` cannot be analysed, or None when it is a BGR uint8 (H, W, 3) array."""
    if not isinstance(image, np.ndarray):
        return f"not an array ({type(image).__name__})"
    if image.dtype != np.uint8:
        return f"dtype {image.dtype}, expected uint8"
    if image.ndim != 3 or image.shape[2] != 3:
        return f"shape {image.shape}, expected (H, W, 3)"
    if image.shape[0] == 0 or image.shape[1] == 0:
        return f"shape {image.shape} is empty"
    return None


@dataclass
class ClockStats:
    """How often the source's timestamps had to be repaired."""

    non_monotonic: int = 0  # repeated or backwards timestamps, repaired
    rebased: int = 0  # long backwards jumps: the source's clock restarted

    def as_dict(self) -> dict[str, int]:
        return {"non_monotonic": self.non_monotonic, "rebased": self.rebased}


class MediaClock:
    """Turns a source's presentation timestamps into a strictly increasing media time.

    A repeated or slightly earlier timestamp (reordered packets) moves to just after the
    previous one; a jump back by more than ``REBASE_AFTER_FRAMES`` frames, or any jump back on a
    new timeline (after a reconnect), is a restarted clock: every later timestamp is shifted so
    the media time continues one ``frame_s`` after the last frame. Frames without a timestamp
    pass as None (they use the capture clock).

    Example:
        >>> clock = MediaClock(frame_s=0.1)
        >>> [clock.repair(t) for t in (0.0, 0.1, 0.1, 0.3)]
        [0.0, 0.1, 0.101, 0.3]
    """

    def __init__(self, frame_s: float = 1 / 30) -> None:
        self.frame_s = frame_s
        self.stats = ClockStats()
        self._offset_s = 0.0
        self._last_s: float | None = None
        self._new_timeline = False

    def new_timeline(self) -> None:
        """The source reconnected: its clock may have restarted anywhere before ours."""
        self._new_timeline = True

    def repair(self, pts_s: float | None) -> float | None:
        """The media time of a frame stamped ``pts_s`` by its source."""
        if pts_s is None:
            return None
        t_s = pts_s + self._offset_s
        last = self._last_s
        if last is not None and t_s <= last:
            self.stats.non_monotonic += 1
            if self._new_timeline or last - t_s > REBASE_AFTER_FRAMES * self.frame_s:
                self.stats.rebased += 1
                self._offset_s += last + self.frame_s - t_s
                t_s = last + self.frame_s
            else:
                t_s = last + MIN_STEP_S
        self._last_s, self._new_timeline = t_s, False
        return t_s


class FreezeDetector:
    """Says whether a frame repeats the previous one exactly.

    One middle row is compared first: sensor noise makes it differ between any two real
    frames, so the common case costs a 2 KB comparison plus the copy kept for the next frame
    (about 0.1 ms for 640x480). Only when that row matches is the whole frame compared.
    """

    def __init__(self) -> None:
        self._previous = np.empty((0, 0, 3), np.uint8)  # (H, W, 3) copy of the last frame
        self.frozen = 0

    def repeated(self, image: np.ndarray) -> bool:
        """True when ``image`` (H, W, 3) equals the previous image; remembers this one."""
        previous = self._previous
        if previous.shape == image.shape:
            row = image.shape[0] // 2
            if np.array_equal(image[row], previous[row]) and np.array_equal(image, previous):
                self.frozen += 1
                return True
        else:
            previous = self._previous = np.empty_like(image)
        np.copyto(previous, image)
        return False

    def reset(self) -> None:
        self._previous = np.empty((0, 0, 3), np.uint8)
