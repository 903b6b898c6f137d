"""The soak's results, their goals, table and plot (benchmarks/soak.py runs the soak)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Sample:
    """One 10-s window."""

    t_s: float
    frames: int
    fps: float
    rss_mb: float
    fds: int  # at the last clip switch (a quiescent point: no clip open)
    threads: int  # OS threads at the last clip switch
    proc_ms_p50: float  # stages only, per frame, wall clock
    proc_ms_p99: float
    cpu_ms_p99: float  # the worker thread's CPU time per frame: blind to the neighbours' load
    capture_to_done_ms_p99: float  # includes the wait in the ring
    event_latency_ms: float  # median capture_to_event of the window's events (nan if none)
    events: int
    cycle: int  # playlist cycle the window ended in


@dataclass
class SoakResult:
    minutes: float
    warmup_s: float
    samples: list[Sample] = field(default_factory=list)
    cycle_p99_ms: list[float] = field(default_factory=list)  # per completed playlist cycle
    cycle_cpu_p99_ms: list[float] = field(default_factory=list)
    cycle_ids: list[int] = field(default_factory=list)  # the playlist cycle of each entry above
    events_decided: int = 0
    events_logged: int = 0
    frames: int = 0
    balanced: bool = False

    def goals(self) -> dict[str, float]:
        """The numbers the goals are about (see the module docstring)."""
        after = [s for s in self.samples if s.t_s > self.warmup_s] or self.samples[-1:]
        first, rest = after[0], after[1:] or after
        third = max(len(after) // 3, 1)
        early, late = after[:third], after[-third:]
        return {
            "rss_growth_pct": 100 * (max(s.rss_mb for s in rest) / first.rss_mb - 1),
            "fd_growth": max(s.fds for s in late) - max(s.fds for s in early),
            "thread_growth": max(s.threads for s in late) - max(s.threads for s in early),
            "p99_drift_pct": self._drift_pct(self.cycle_p99_ms),
            "cpu_p99_drift_pct": self._drift_pct(self.cycle_cpu_p99_ms),
            "lost_events": self.events_decided - self.events_logged,
        }

    def _drift_pct(self, per_cycle: list[float]) -> float:
        """Last completed cycle against the first one after the warm-up.

        Entries are matched to cycles by number: a cycle in which no sample window ended has
        no entry, so a position in the list is not a cycle number."""
        first = self._warm_cycles()
        cycles = [v for c, v in zip(self.cycle_ids, per_cycle, strict=True) if c >= first]
        return 100 * (cycles[-1] / cycles[0] - 1) if len(cycles) >= 2 else float("nan")

    def _warm_cycles(self) -> int:
        """Cycles completed during the warm-up (their p99 is not the reference)."""
        warm = [s.cycle for s in self.samples if s.t_s <= self.warmup_s]
        return max(warm, default=0) + 1 if warm else 0


HEADER = (
    f"{'t s':>6} {'fps':>6} {'RSS MB':>7} {'fds':>4} {'thr':>4} {'p50 ms':>7} {'p99 ms':>7} "
    f"{'cpu p99':>7} {'cap→done p99':>12} {'event ms':>9} {'events':>6}"
)


def row(s: Sample) -> str:
    return (
        f"{s.t_s:6.0f} {s.fps:6.1f} {s.rss_mb:7.1f} {s.fds:4d} {s.threads:4d} "
        f"{s.proc_ms_p50:7.2f} {s.proc_ms_p99:7.2f} {s.cpu_ms_p99:7.2f} "
        f"{s.capture_to_done_ms_p99:12.1f} "
        f"{s.event_latency_ms:9.1f} {s.events:6d}"
    )


def table(result: SoakResult, every: int = 1) -> str:
    rows = [HEADER, *(row(s) for s in result.samples[::every])]
    goals = result.goals()
    rows.append(
        f"frames {result.frames}, events decided {result.events_decided}, logged "
        f"{result.events_logged}, balanced {result.balanced}; after a {result.warmup_s:.0f} s "
        f"warm-up: RSS growth {goals['rss_growth_pct']:.1f} %, fd growth {goals['fd_growth']}, "
        f"thread growth {goals['thread_growth']}, p99 drift {goals['p99_drift_pct']:.1f} % "
        f"wall / {goals['cpu_p99_drift_pct']:.1f} % CPU (per-cycle p99 wall "
        f"{result.cycle_p99_ms} ms, CPU {result.cycle_cpu_p99_ms} ms), lost events "
        f"{goals['lost_events']}"
    )
    return "\n".join(rows)


def plot(result: SoakResult, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [s.t_s / 60 for s in result.samples]
    panels = [
        ("RSS (MB)", [s.rss_mb for s in result.samples]),
        ("open fds / threads", None),
        ("per-frame ms", None),
        ("event latency ms (median)", [s.event_latency_ms for s in result.samples]),
    ]
    fig, axes = plt.subplots(len(panels), 1, figsize=(8, 9), sharex=True)
    for ax, (title, values) in zip(axes, panels, strict=True):
        if title.startswith("open"):
            ax.plot(t, [s.fds for s in result.samples], label="fds")
            ax.plot(t, [s.threads for s in result.samples], label="threads")
            ax.legend(loc="lower right")
        elif title.startswith("per-frame"):
            ax.plot(t, [s.proc_ms_p50 for s in result.samples], label="p50 wall")
            ax.plot(t, [s.proc_ms_p99 for s in result.samples], label="p99 wall")
            ax.plot(t, [s.cpu_ms_p99 for s in result.samples], label="p99 CPU")
            ax.legend(loc="lower right")
        else:
            ax.plot(t, values, marker="." if "event" in title else None)
        ax.axvline(result.warmup_s / 60, color="grey", linestyle=":", linewidth=1)
        ax.set_ylabel(title, fontsize=8)
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("minutes (dotted: end of warm-up)")
    fig.suptitle(f"mexlive soak, {result.minutes:g} min, {result.frames} frames", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
