"""Data contracts passed between stages (see design.md, "Contracts")."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(slots=True)
class Frame:
    """One captured frame.

    Attributes:
        seq: the source's own 0-based frame index (gaps mean frames were lost upstream).
        t_mono_ns: capture time on the monotonic clock (``time.monotonic_ns``).
        pts_s: the source's presentation timestamp in seconds (None when it has none).
        image: BGR uint8 (H, W, 3). Owned by the ring: valid until the consumer's next ``get``.
    """

    seq: int
    t_mono_ns: int
    pts_s: float | None
    image: np.ndarray


@dataclass(slots=True)
class SourceFrame:
    """What a source hands the capture thread: pixels plus the source's own clock."""

    image: np.ndarray  # (H, W, 3) BGR uint8
    pts_s: float | None
    index: int  # the source's own 0-based frame index
    owned: bool = False  # a fresh array nobody else touches: the ring may keep it uncopied
