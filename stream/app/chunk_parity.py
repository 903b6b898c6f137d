"""How close a chunk's analysis comes to a single run's: the spotter's per-frame apex score and
the decided expressions of a stretch of a file, beside those of the whole file.

The event log rounds and gates what it says (an interval starting before calibration, or held
back by the context gate, is not written), so the comparison reads the score of every frame
and every decided interval straight from the spotting stage. ``mexlive batch`` does not use
this; ``benchmarks.bench_chunk_parity`` does (docs/benchmarks.md, "Chunks of a long video").

    whole = stretch_trace("talk.mp4", 0, 900)
    chunk = stretch_trace("talk.mp4", 300, 900, first_pts_s=10.0)   # a 4-s warm-up before 14 s
    gap = max_score_gap(whole, chunk, owned=(420, 900))
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from stream.capture.stretch import StretchSource
from stream.contracts import Frame, FrameResults, Stage
from stream.live.builder import LiveConfig, RunLimits, SpotterOptions, build_live
from stream.output.events import EventBus


@dataclass
class StretchTrace:
    """Per frame the apex score (None: no valid face), and the decided intervals."""

    scores: dict[int, float | None] = field(default_factory=dict)
    decided: list[tuple[int, int, int, str, str, float, str | None]] = field(default_factory=list)
    # (onset, apex, offset, kind, emotion, apex score, why not reported or None)
    fell_back: bool = False

    def owned(self, start: int, end: int) -> list[tuple]:
        """The decided intervals whose apex lies in ``[start, end)``."""
        return [d for d in self.decided if start <= d[1] < end]


def stretch_trace(
    video: str,
    first: int,
    stop: int,
    first_pts_s: float | None = None,
    spotter: str = "learned",
    also: Callable[[Frame, FrameResults], None] | None = None,
) -> StretchTrace:
    """Analyse frames ``[first, stop)`` as ``mexlive batch`` does (inline alignment);
    ``also`` sees every frame's results too (a benchmark's probe of the earlier stages)."""
    trace = StretchTrace()

    def probe(frame: Frame, results: FrameResults) -> None:
        trace.scores[frame.seq] = results.apex_score
        if also is not None:
            also(frame, results)

    source = StretchSource(video, first, stop, first_pts_s)
    config = LiveConfig(
        source=source,
        limits=RunLimits(align="inline"),
        spotter=SpotterOptions(kind=spotter),
        extra_stages=(Stage("probe", probe),),
    )
    run = build_live(config, EventBus([]))
    run.pipeline.run()
    trace.fell_back = source.fell_back
    for spotted, reason in run.spotter.decided:
        trace.decided.append(
            (
                spotted.onset_seq,
                spotted.apex_seq,
                spotted.offset_seq,
                spotted.kind,
                spotted.emotion,
                float(spotted.apex_score),
                reason,
            )
        )
    return trace


def max_score_gap(whole: StretchTrace, chunk: StretchTrace, owned: tuple[int, int]) -> float:
    """The largest |apex score difference| over the owned frames; inf where one run has a
    face and the other none."""
    gap = 0.0
    for seq in range(*owned):
        a, b = whole.scores.get(seq), chunk.scores.get(seq)
        if (a is None) != (b is None):
            return float("inf")
        if a is not None:
            gap = max(gap, abs(a - b))
    return gap
