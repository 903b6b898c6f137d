"""What a pipeline measured: per-stage latency windows and the run summary of the ``stopped``
line (``stream.live.pipeline`` re-exports both)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


class LatencyWindow:
    """The last ``size`` latencies of a stage in milliseconds, preallocated."""

    def __init__(self, size: int = 1024) -> None:
        self._ms = np.zeros(size, np.float64)
        self._n = 0

    def add(self, ms: float) -> None:
        self._ms[self._n % self._ms.size] = ms
        self._n += 1

    def percentiles(self) -> dict[str, float]:
        values = self._ms[: min(self._n, self._ms.size)]
        if values.size == 0:
            return {"median_ms": 0.0, "p99_ms": 0.0}
        p50, p99 = np.percentile(values, [50, 99])
        return {"median_ms": round(float(p50), 3), "p99_ms": round(float(p99), 3)}


@dataclass
class RunSummary:
    """What a run did, for the ``stopped`` line and the one-line summary at exit."""

    source: str
    captured: int = 0
    processed: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    elapsed_s: float = 0.0
    expressions: int = 0
    status_counts: dict[str, int] = field(default_factory=dict)
    stage_latency: dict[str, dict[str, float]] = field(default_factory=dict)
    frame_latency: dict[str, float] = field(default_factory=dict)  # capture → last stage
    error: str | None = None
    warning: str | None = None  # the run succeeded, but not quite as asked (a cut file)

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values())

    @property
    def balanced(self) -> bool:
        return self.captured == self.processed + self.dropped_total

    @property
    def fps(self) -> float:
        return self.processed / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def one_line(self) -> str:
        drops = ", ".join(f"{k} {v}" for k, v in sorted(self.dropped.items())) or "none"
        return (
            f"mexlive: {self.processed} of {self.captured} frames from {self.source} in "
            f"{self.elapsed_s:.1f} s ({self.fps:.1f} fps), dropped: {drops}, "
            f"events: {self.expressions}"
        )
