"""One-Euro filter over arrays of landmarks (Casiez et al., CHI 2012), by timestamp.

A low-pass whose cutoff rises with speed: still landmarks lose their detector jitter, moving
ones keep up. Time comes from the frames' own clock, so variable frame rates are fine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class OneEuroConfig:
    """Cutoffs in Hz; ``beta`` raises the cutoff per px/s of speed (see bench_align.py)."""

    min_cutoff_hz: float = 2.0
    beta: float = 0.05
    d_cutoff_hz: float = 1.0


class OneEuroFilter:
    """Filters (N, D) arrays; the first sample (or one after ``reset``) passes unchanged."""

    def __init__(self, config: OneEuroConfig | None = None) -> None:
        self.config = config or OneEuroConfig()
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None
        self._t_s = 0.0

    def reset(self) -> None:
        self._x = None

    @staticmethod
    def _alpha(cutoff_hz: np.ndarray | float, dt_s: float) -> np.ndarray | float:
        tau = 1.0 / (2 * math.pi * cutoff_hz)
        return 1.0 / (1.0 + tau / dt_s)

    def __call__(self, x: np.ndarray, t_s: float) -> np.ndarray:
        if self._x is None or t_s <= self._t_s:
            self._x = x.astype(np.float32, copy=True)
            self._dx = np.zeros_like(self._x)
            self._t_s = t_s
            return self._x.copy()
        dt = t_s - self._t_s
        self._t_s = t_s
        dx = (x - self._x) / dt
        self._dx += self._alpha(self.config.d_cutoff_hz, dt) * (dx - self._dx)
        cutoff = self.config.min_cutoff_hz + self.config.beta * np.abs(self._dx)
        self._x += self._alpha(cutoff, dt) * (x - self._x)
        return self._x.copy()
