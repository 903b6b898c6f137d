"""Where and what ``stream.synthetic.injected`` injects into a real video: ``InjectionConfig``
and the windows (clip timing, kind, amplitude) it cuts, position by position.

A position's timing, kind and amplitude are a pure function of (seed, position): the default
grid draws its durations and amplitudes from ``default_rng((seed, position))``; the kind and the
random gap to the next position come from ``default_rng((seed, position, 3))``, so adding them
left the micro-only grid exactly as it was.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from stream.errors import MexliveError
from stream.synthetic.schedule import MACRO_PX, MICRO_PX, MICRO_S, apex_step, duration_frames


@dataclass(frozen=True)
class InjectionConfig:
    """Where and what to inject. Amplitudes are px at a 200 px face, scaled to the real one."""

    seed: int = 0
    pre_s: float = 1.3  # real frames before the onset in each clip
    post_s: float = 0.3  # and after the offset
    spacing_s: float = 2.5  # between consecutive injected onsets
    amplitude_px: tuple[float, float] = MICRO_PX
    duration_s: tuple[float, float] = MICRO_S  # onset -> offset
    emotions_per_position: bool = False  # one clip per emotion at each position
    max_positions: int | None = None  # stop after this many positions (skipped ones count)
    # A gap (s) drawn per position instead of the fixed grid: positions a model cannot learn.
    spacing_range_s: tuple[float, float] | None = None
    macro_fraction: float = 0.0  # share of positions that hold a macro-expression
    macro_amplitude_px: tuple[float, float] = MACRO_PX
    macro_duration_s: tuple[float, float] = (0.6, 2.0)
    # Explicit onset frames instead of the grid (e.g. the calm stretches of a video), each at
    # least ``pre_s`` into the video; one that would overlap the previous clip moves later.
    onsets: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if self.onsets is not None and np.any(np.diff(self.onsets) <= 0):
            raise MexliveError(f"onsets must increase: {self.onsets}")
        if self.seed < 0 or self.pre_s < 0 or self.post_s < 0 or self.spacing_s <= 0:
            raise MexliveError("injection needs seed, pre_s, post_s >= 0 and spacing_s > 0")
        for name in ("amplitude_px", "macro_amplitude_px", "duration_s", "macro_duration_s"):
            lo, hi = getattr(self, name)
            if not 0 < lo <= hi:
                raise MexliveError(f"bad {name} range {(lo, hi)}")
        gaps = self.spacing_range_s
        if gaps is not None and not 0 < gaps[0] <= gaps[1]:
            raise MexliveError(f"bad spacing range {self.spacing_range_s}")
        if not 0.0 <= self.macro_fraction <= 1.0:
            raise MexliveError(f"macro fraction must lie in [0, 1]: {self.macro_fraction}")

    @property
    def longest_s(self) -> float:
        """The longest clip, s: pre_s + the longest event + post_s."""
        longest = self.duration_s[1]
        if self.macro_fraction > 0:
            longest = max(longest, self.macro_duration_s[1])
        return self.pre_s + longest + self.post_s


NEVER = 1 << 62  # the start of a position that does not exist


@dataclass
class Window:
    """A position being cut: its timing and the frames seen so far."""

    position: int
    start: int
    onset: int
    apex: int
    offset: int
    stop: int  # exclusive
    amplitude: float  # px at a 200 px face
    kind: str  # "micro" | "macro"
    frames: list[np.ndarray] = field(default_factory=list)
    rest: list[np.ndarray] = field(default_factory=list)


def windows(frames: Iterable[tuple], config: InjectionConfig, fps: float) -> Iterator[Window]:
    """Complete windows, in order, of positions whose every frame has a face."""
    pre, post = round(config.pre_s * fps), round(config.post_s * fps)
    spacing = max(1, round(config.spacing_s * fps))
    durations = {
        "micro": duration_frames(config.duration_s, fps),
        "macro": duration_frames(config.macro_duration_s, fps),
    }
    amplitudes = {"micro": config.amplitude_px, "macro": config.macro_amplitude_px}
    pending: deque[Window] = deque()
    position, start = 0, 0
    explicit = config.onsets
    if explicit is not None:
        start = explicit[0] - pre if explicit else NEVER
    for i, image, rest in frames:
        while start <= i and position != config.max_positions:
            # Timing is a function of (seed, position) only: clips are reproducible one by one.
            # Kind and gap come from their own generator, so the default grid of micro events
            # draws exactly what it drew before they existed.
            rng = np.random.default_rng((config.seed, position))
            extra = np.random.default_rng((config.seed, position, 3))
            kind = "macro" if extra.random() < config.macro_fraction else "micro"
            onset = start + pre
            lo, hi = durations[kind]
            n = int(rng.integers(lo, hi + 1))
            apex = onset + apex_step(n, rng)
            amplitude = float(rng.uniform(*amplitudes[kind]))
            end = onset + n + post + 1
            pending.append(Window(position, start, onset, apex, onset + n, end, amplitude, kind))
            gap = spacing
            if config.spacing_range_s is not None:
                gap = max(1, round(extra.uniform(*config.spacing_range_s) * fps))
            # The next clip's event starts after this clip ends: no frame holds two warps.
            start = max(start + gap, end - pre)
            if explicit is not None:  # the next listed onset (none left: never)
                later = position + 1 < len(explicit)
                start = max(explicit[position + 1] - pre, end - pre) if later else NEVER
            position += 1
        for window in list(pending):
            if rest is None:  # a frame without a face spoils every clip that holds it
                pending.remove(window)
                continue
            window.frames.append(image)
            window.rest.append(rest)
        while pending and pending[0].stop == i + 1:
            yield pending.popleft()
        if not pending and position == config.max_positions:
            return
