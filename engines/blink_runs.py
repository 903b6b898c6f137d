"""Blinks decided once the eyes are open again: the blink lines of the log.

``ContextTracker`` flags a blink from the first frame of a fast lid fall, causally, so a long
closure (a held squint, a look down, eyes shut on purpose) flags its first ``blink_max_s`` as
if it were a blink, and a lid that half-reopens for a frame splits one blink in two. A log line
can wait: ``BlinkRuns`` follows the tracker's ``eyes_closed`` and writes a blink when the eyes
have reopened within ``blink_line_max_s`` (0.6 s, the hand labels' definition of a blink) of
closing, so closures longer than a blink are never logged. A closure that starts within
``blink_rejoin_s`` of the last reopening continues the same blink: an eyelid cannot open and
close again that fast (a blink's reopening alone takes 100-200 ms), so that is one blink's lids
bouncing on the landmarks. The price is latency: a line comes ``blink_rejoin_s`` after the
reopening.
"""

from __future__ import annotations

from dataclasses import dataclass

from engines.context import ContextConfig


@dataclass(frozen=True)
class BlinkRun:
    """One blink: its first and last closed frames (inclusive) and their times."""

    onset: int
    offset: int
    onset_s: float
    offset_s: float


class BlinkRuns:
    """Per frame ``(seq, t_s, eyes_closed)`` → the blinks that frame decided (at most one).

    Example:
        >>> runs = BlinkRuns()  # frames 40-44 of a 30-fps stream closed, then open
        >>> lines = [run for i in range(60) for run in runs.update(i, i / 30, 40 <= i < 45)]
        >>> [(run.onset, run.offset) for run in lines]
        [(40, 44)]
    """

    def __init__(self, config: ContextConfig | None = None) -> None:
        cfg = config or ContextConfig()
        self.max_s, self.rejoin_s = cfg.blink_line_max_s, cfg.blink_rejoin_s
        self._start: tuple[int, float] | None = None  # first closed frame of the current blink
        self._last: tuple[int, float] | None = None  # its latest closed frame
        self._reopened_s: float | None = None  # when the eyes opened again; None: still shut

    def update(self, seq: int, t_s: float, eyes_closed: bool) -> list[BlinkRun]:
        decided = []
        # _reopened_s is set only while a blink is pending: open long enough, it was one blink
        if self._reopened_s is not None and t_s - self._reopened_s >= self.rejoin_s - 1e-9:
            decided += self._decide()
        if eyes_closed:
            if self._start is None:
                self._start = (seq, t_s)
            self._last, self._reopened_s = (seq, t_s), None
        elif self._start is not None and self._reopened_s is None:
            self._reopened_s = t_s
            if self.rejoin_s <= 0:
                decided += self._decide()
        return decided

    def gap(self) -> list[BlinkRun]:
        """No face (or the stream ended): a blink that reopened is decided; a closure still
        shut is dropped (its length is unknown)."""
        decided = self._decide() if self._reopened_s is not None else []
        self._start = self._last = self._reopened_s = None
        return decided

    def _decide(self) -> list[BlinkRun]:
        assert self._start is not None and self._last is not None and self._reopened_s is not None
        (onset, onset_s), (offset, offset_s) = self._start, self._last
        reopened_s = self._reopened_s
        self._start = self._last = self._reopened_s = None
        if reopened_s - onset_s > self.max_s:
            return []  # longer than any blink: a squint held, a look down
        return [BlinkRun(onset, offset, onset_s, offset_s)]
