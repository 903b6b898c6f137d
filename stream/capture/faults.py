"""Fault drills: a source wrapper that makes a good source misbehave on a schedule.

Use it to see what mexlive says when a camera or a network goes wrong, before it happens for
real::

    mexlive --source "faults:stall@150+3s,disconnect@300+30=480x360,freeze@450+20:synthetic:3"

A spec is ``faults:FAULT[,FAULT...]:INNER`` where INNER is any ``--source`` (a camera, a file,
a URL, ``synthetic[:seed]``) and each FAULT is ``KIND@FRAME[+LENGTH][=ARG]``. FRAME counts the
inner source's frames (the scene's clock), so a drill means the same moment in every run.

=================================  ===========================================================
``stall@F+Ns``                     the read of frame F blocks N seconds; past the read timeout
                                   (``read_timeout_s``, 2.5 s) it fails like a dead network
                                   read, reopening fails until the N seconds are over, and the
                                   frames of those seconds are lost
``disconnect@F+N[=WxH]``           frame F's read fails (unplugged); the next two reopens fail;
                                   N frames are lost; it comes back at WxH when given
``corrupt@F+N``                    N frames cannot be decoded (``CorruptFrameError``)
``garbage@F+N``                    N frames come back as arrays that are not BGR (H, W, 3)
``freeze@F+N``                     N frames repeat frame F's pixels (timestamps go on)
``drop@F+N``                       N frames are lost inside the source (its index skips them)
``pts_repeat@F+N``                 N frames carry frame F's timestamp
``pts_swap@F+N``                   timestamps of neighbouring frames swap in pairs over N frames
``pts_back@F=S``                   from frame F on, timestamps run S seconds behind (a stream
                                   whose clock restarted)
``rate@F+N=FPS``                   N frames at a lower rate FPS (frames in between are not sent)
``resize@F=WxH``                   from frame F on, frames are WxH (no reconnect)
=================================  ===========================================================

The wrapper is live by default (a drill models a camera: it reconnects). Its frames come at the
inner source's pace: over a camera, a URL or the synthetic face paced in real time the ring
drops the oldest frame when the analysis falls behind, as with a camera; over an unpaced inner
(a file, ``--no-realtime``) it waits instead, so the frame accounting of a drill (which frames
are frozen, corrupt, lost) is the same on a fast and on a busy machine.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from dataclasses import dataclass

import cv2
import numpy as np

from stream.capture.guards import check_image
from stream.contracts import SourceFrame
from stream.errors import CorruptFrameError, SourceError, SourceReadError

KINDS = (
    "stall",
    "disconnect",
    "corrupt",
    "garbage",
    "freeze",
    "drop",
    "pts_repeat",
    "pts_swap",
    "pts_back",
    "rate",
    "resize",
)
_WINDOWED = ("corrupt", "garbage", "freeze", "drop", "pts_repeat", "pts_swap", "rate")
_FAULT_RE = re.compile(
    r"(?P<kind>[a-z_]+)@(?P<at>\d+)(?:\+(?P<length>[\d.]+)(?P<unit>s?))?(?:=(?P<arg>[\w.]+))?"
)
# Arrays a broken decoder or driver may hand back instead of a BGR frame.
_GARBAGE = (
    lambda shape: np.zeros(shape[:2], np.uint8),  # grey, no channel axis
    lambda shape: np.zeros((*shape[:2], 4), np.uint8),  # BGRA
    lambda shape: np.zeros(shape, np.float32),  # float pixels
    lambda shape: np.zeros((0, 0, 3), np.uint8),  # empty buffer
)


@dataclass(frozen=True)
class Fault:
    """One scheduled fault: ``kind`` at inner frame ``at`` for ``length`` frames (seconds for a
    stall), with ``arg`` (a size ``(w, h)``, a rate, or a clock shift in seconds)."""

    kind: str
    at: int
    length: float = 0.0
    arg: tuple[int, int] | float | None = None

    def covers(self, index: int) -> bool:
        return self.at <= index < self.at + self.length

    @property
    def end(self) -> int:
        """First inner frame after the fault's window."""
        return self.at + int(self.length) if self.kind != "stall" else self.at


def parse_faults(text: str) -> list[Fault]:
    """``"stall@150+3s,freeze@400+20"`` → faults; SourceError says what is wrong."""
    faults = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        match = _FAULT_RE.fullmatch(item)
        if match is None or match["kind"] not in KINDS:
            raise SourceError(
                f"fault {item!r}: expected KIND@FRAME[+LENGTH][=ARG], KIND one of "
                f"{', '.join(KINDS)}"
            )
        kind, arg_text = match["kind"], match["arg"]
        length = float(match["length"] or 0)
        if (kind == "stall") != (match["unit"] == "s"):
            raise SourceError(f"fault {item!r}: a stall lasts seconds (+3s), others frames (+30)")
        if kind in (*_WINDOWED, "stall") and length <= 0:
            raise SourceError(f"fault {item!r}: needs a length, e.g. {kind}@{match['at']}+10")
        arg: tuple[int, int] | float | None = None
        if kind in ("resize", "disconnect") and arg_text:
            size = re.fullmatch(r"(\d+)x(\d+)", arg_text)
            if size is None or min(int(size[1]), int(size[2])) < 16:
                raise SourceError(f"fault {item!r}: the size must look like 480x360")
            arg = (int(size[1]), int(size[2]))
        elif kind in ("rate", "pts_back"):
            try:
                arg = float(arg_text or "")
            except ValueError:
                what = "FPS" if kind == "rate" else "S"
                raise SourceError(f"fault {item!r}: needs ={what}") from None
            if arg <= 0:
                raise SourceError(f"fault {item!r}: {arg_text} must be positive")
        elif kind == "resize":
            raise SourceError(f"fault {item!r}: needs a size, e.g. resize@100=480x360")
        faults.append(Fault(kind, int(match["at"]), length, arg))
    if not faults:
        raise SourceError("faults: no fault given (e.g. faults:freeze@100+20:synthetic)")
    return sorted(faults, key=lambda f: f.at)


def split_spec(spec: str) -> tuple[list[Fault], str]:
    """``"faults:FAULTS:INNER"`` → (faults, inner spec)."""
    body = spec[len("faults:") :]
    faults_text, sep, inner = body.partition(":")
    if not sep or not inner.strip():
        raise SourceError(f"{spec}: expected faults:FAULT[,FAULT...]:SOURCE")
    return parse_faults(faults_text), inner.strip()


class FaultySource:
    """Wraps a source and injects ``faults`` on schedule (see the module docstring).

    Args:
        inner: the source that misbehaves (not opened yet).
        faults: the schedule; frame numbers count the inner source's frames.
        live: reconnect like a camera (default) or behave like a file.
        paced: frames come at the world's pace, so a slow consumer drops (see the module
            docstring); None: as the inner source (live, or a real-time synthetic face).
        read_timeout_s: a stall longer than this fails the read (a network read timeout).
        failed_opens: reopen attempts that fail after a disconnect (exercises the backoff).
    """

    def __init__(
        self,
        inner,
        faults: list[Fault],
        live: bool = True,
        read_timeout_s: float = 2.5,
        failed_opens: int = 2,
        name: str | None = None,
        paced: bool | None = None,
    ) -> None:
        self.inner = inner
        self.faults = sorted(faults, key=lambda f: f.at)
        self.live = live
        if paced is None:
            paced = bool(getattr(inner, "live", False) or getattr(inner, "realtime", False))
        self.paced = paced
        self.read_timeout_s = read_timeout_s
        self.failed_opens = failed_opens
        self.name = name or f"faults:{inner.name}"
        self.injected: Counter[str] = Counter()  # frames (or events) each fault touched
        self._interrupt = threading.Event()
        self._fired: set[int] = set()  # point faults already triggered (by position)
        self._inner_next = 0  # index of the next inner frame
        self._index = 0  # this source's own index (restarts at 0 on a reopen)
        self._opened = False
        self._inner_open = False
        self._in_outage = False  # an injected disconnect or timed-out stall, until reopened
        self._outage_opens = 0  # reopen attempts still to fail
        self._outage_until = 0.0  # monotonic time before which reopening fails
        self._lose = 0  # inner frames to discard on the next read (lost in an outage)
        self._size: tuple[int, int] | None = None  # (w, h) the frames are scaled to
        self._pts_shift = 0.0
        self._frozen: np.ndarray | None = None
        self._repeat_pts: float | None = None
        self._held: SourceFrame | None = None  # the second frame of a swapped pair

    @property
    def fps(self) -> float | None:
        return self.inner.fps

    def __enter__(self):
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def open(self) -> None:
        now = time.monotonic()
        if self._outage_opens > 0 or now < self._outage_until:
            self._outage_opens = max(self._outage_opens - 1, 0)
            raise SourceError(f"{self.name}: device not present (injected outage)")
        if not self._inner_open:
            self.inner.open()
            self._inner_open = True
        self._interrupt.clear()
        self._in_outage = False
        self._opened, self._index = True, 0  # a reopened device counts from 0 again

    def close(self) -> None:
        self._opened = False
        # During an injected outage the inner source is the world behind the cable: it keeps
        # running. Otherwise this is the end of the run.
        if self._inner_open and not self._in_outage:
            self.inner.close()
            self._inner_open = False

    def interrupt(self) -> None:
        """Abort a stall at once (the capture thread is stopping)."""
        self._interrupt.set()

    def counters(self) -> dict[str, int]:
        inner = self.inner.counters() if hasattr(self.inner, "counters") else {}
        return {**inner, **{f"injected_{k}": v for k, v in sorted(self.injected.items())}}

    # -- reading --------------------------------------------------------------------------
    def read(self) -> SourceFrame | None:
        if not self._opened:
            raise SourceReadError(f"{self.name}: not open")
        if self._held is not None:
            frame, self._held = self._held, None
            return self._emit(frame)
        self._point_faults(self._inner_next)
        if self._lose > 0 and hasattr(self.inner, "skip"):  # the synthetic scene: no rendering
            self.inner.skip(self._lose)
            self._inner_next, self._lose = self._inner_next + self._lose, 0
        while self._lose > 0:
            self._lose -= 1
            if self._read_inner() is None:
                return None
        window = self._window(self._inner_next)
        kind = window.kind if window else None
        if kind == "drop":
            for _ in range(window.end - self._inner_next):
                if self._read_inner() is None:
                    return None
                self._index += 1  # the source knows it lost them: its index skips
                self.injected["drop"] += 1
            return self.read()
        frame = self._read_inner()
        if frame is None or window is None:
            return None if frame is None else self._emit(frame)
        self.injected[kind] += 1
        offset = self._inner_next - 1 - window.at  # position of this frame in the window
        if kind == "corrupt":
            self._index += 1
            raise CorruptFrameError(f"{self.name}: frame {self._index - 1} undecodable (injected)")
        if kind == "garbage":
            frame.image = _GARBAGE[offset % len(_GARBAGE)](frame.image.shape)
        elif kind == "freeze":
            if offset == 0 or self._frozen is None:
                self._frozen = frame.image.copy()
            frame.image, frame.owned = self._frozen, False
        elif kind == "pts_repeat":
            if offset == 0:
                self._repeat_pts = frame.pts_s
            frame.pts_s = self._repeat_pts
        elif kind == "pts_swap" and offset % 2 == 0 and window.covers(self._inner_next):
            second = self._read_inner()
            if second is not None:
                self.injected[kind] += 1
                frame.pts_s, second.pts_s = second.pts_s, frame.pts_s
                self._held = second
        elif kind == "rate":
            step = max(round((self.inner.fps or 30.0) / float(window.arg)), 1)
            while offset % step and window.covers(self._inner_next - 1):
                frame = self._read_inner()  # frames between the lower rate's ticks: not sent
                if frame is None:
                    return None
                self.injected[kind] += 1
                offset += 1
        return self._emit(frame)

    def _point_faults(self, index: int) -> None:
        """Trigger the stall / disconnect / resize / clock shift scheduled at ``index``."""
        for position, fault in enumerate(self.faults):
            if fault.at != index or position in self._fired or fault.kind in _WINDOWED:
                continue
            self._fired.add(position)
            self.injected[fault.kind] += 1
            if fault.kind == "resize":
                self._size = fault.arg
            elif fault.kind == "pts_back":
                self._pts_shift -= float(fault.arg)
            elif fault.kind == "disconnect":
                self._outage_opens, self._lose = self.failed_opens, int(fault.length)
                self._in_outage = True
                if fault.arg is not None:
                    self._size = fault.arg
                self._opened = False
                raise SourceReadError(f"{self.name}: device unplugged (injected)")
            elif fault.kind == "stall":
                self._stall(fault.length)

    def _stall(self, seconds: float) -> None:
        started = time.monotonic()
        timed_out = seconds > self.read_timeout_s
        if self._interrupt.wait(self.read_timeout_s if timed_out else seconds):
            raise SourceReadError(f"{self.name}: read interrupted")
        if timed_out:  # a network read timeout: the connection is gone for the rest
            self._outage_until, self._in_outage = started + seconds, True
            self._lose = round(seconds * (self.inner.fps or 30.0))
            self._opened = False
            raise SourceReadError(f"{self.name}: read timed out (injected stall)")

    def _window(self, index: int) -> Fault | None:
        return next((f for f in self.faults if f.kind in _WINDOWED and f.covers(index)), None)

    def _read_inner(self) -> SourceFrame | None:
        frame = self.inner.read()
        if frame is not None:
            self._inner_next += 1
        return frame

    def _emit(self, frame: SourceFrame) -> SourceFrame:
        image = frame.image
        resizable = check_image(image) is None
        if self._size is not None and resizable and image.shape[1::-1] != self._size:
            image, frame.owned = cv2.resize(image, self._size, interpolation=cv2.INTER_AREA), True
        pts_s = None if frame.pts_s is None else frame.pts_s + self._pts_shift
        out = SourceFrame(image=image, pts_s=pts_s, index=self._index, owned=frame.owned)
        self._index += 1
        return out


def open_faulty(spec: str, open_inner) -> FaultySource:
    """``faults:FAULTS:INNER`` → a FaultySource around ``open_inner(INNER)``."""
    faults, inner_spec = split_spec(spec)
    return FaultySource(open_inner(inner_spec), faults, name=spec)
