"""What a person reads in the terminal: one line per spotted expression, and at the end of a
synthetic run, the events beside the ground truth (matched / missed / false)."""

from __future__ import annotations

import sys
from typing import IO

from engines.labels import KINDS
from stream.output.events import ExpressionEvent, StatusEvent


class ConsoleEvents:
    """An EventBus sink printing each expression event as one line."""

    def __init__(self, out: IO[str] | None = None) -> None:
        self.out = out or sys.stdout

    def write(self, event: StatusEvent | ExpressionEvent) -> None:
        if not isinstance(event, ExpressionEvent):
            return
        probs = " ".join(f"{k[:3]} {v:.2f}" for k, v in event.emotion_probs.items())
        print(
            f"[{event.apex_s:8.2f} s] {event.kind:5s} {event.emotion:8s} "
            f"conf {event.confidence:.2f}  {event.onset_s:.2f}–{event.offset_s:.2f} s "
            f"({event.offset_s - event.onset_s:.2f} s)  {probs}  {','.join(event.rois)}  "
            f"+{event.latency_ms['capture_to_event']:.0f} ms",
            file=self.out,
            flush=True,
        )

    def close(self) -> None:
        pass


def truth_table(events: list[ExpressionEvent], truth: list, last_frame: int) -> str:
    """Spotted events beside the synthetic ground truth up to ``last_frame`` (MEGC matching:
    IoU ≥ 0.5, one to one, per kind), as a small text table."""
    from engines.eval.metrics import spotting_matches

    lines = ["kind   truth  spotted  matched  missed  false  emotion right"]
    for kind in KINDS:
        want = [t for t in truth if t.kind == kind and t.offset <= last_frame]
        got = [e for e in events if e.kind == kind]
        pairs = spotting_matches(
            [(e.onset_frame, e.offset_frame) for e in got], [(t.onset, t.offset) for t in want]
        )
        right = sum(got[p].emotion == want[t].emotion for p, t in pairs)
        lines.append(
            f"{kind:6s} {len(want):5d} {len(got):8d} {len(pairs):8d} {len(want) - len(pairs):7d} "
            f"{len(got) - len(pairs):6d}  {right}/{len(pairs)}"
        )
    return "\n".join(lines)
