"""What a person reads in the terminal: one line per spotted expression, and at the end of a
synthetic run, the events beside the ground truth (matched / missed / false)."""

from __future__ import annotations

import sys
from dataclasses import replace
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


def clip_truth(truth: list, last_frame: int) -> list:
    """Truth events that start by ``last_frame``, each ending there at the latest: an
    expression cut by the end of a clip is still truth (and whatever spots it is no false
    event). Works on any frozen dataclass with onset / apex / offset frames."""
    return [
        replace(t, apex=min(t.apex, last_frame), offset=min(t.offset, last_frame))
        for t in truth
        if t.onset <= last_frame
    ]


def truth_table(
    events: list[ExpressionEvent], truth: list, last_frame: int, fps: float = 30.0
) -> str:
    """Spotted events beside the synthetic ground truth up to ``last_frame`` (MEGC matching:
    IoU ≥ 0.5, one to one, per kind): the counts per kind, then a line per truth row and per
    spotted event, in time order, saying whether it was matched, missed or false."""
    from engines.eval.metrics import spotting_matches

    truth = clip_truth(truth, last_frame)
    counts = ["kind   truth  spotted  matched  missed  false  emotion right"]
    rows: list[tuple[float, str]] = []
    for kind in KINDS:
        want = [t for t in truth if t.kind == kind]
        got = [e for e in events if e.kind == kind]
        pairs = spotting_matches(
            [(e.onset_frame, e.offset_frame) for e in got], [(t.onset, t.offset) for t in want]
        )
        right = sum(got[p].emotion == want[t].emotion for p, t in pairs)
        counts.append(
            f"{kind:6s} {len(want):5d} {len(got):8d} {len(pairs):8d} {len(want) - len(pairs):7d} "
            f"{len(got) - len(pairs):6d}  {right}/{len(pairs)}"
        )
        by_truth = {t: p for p, t in pairs}
        for j, t in enumerate(want):
            said = f"truth {t.onset / fps:6.2f}–{t.offset / fps:6.2f} s {t.emotion:8s}"
            if j in by_truth:
                e = got[by_truth[j]]
                spotted = f"spotted {e.onset_s:6.2f}–{e.offset_s:6.2f} s {e.emotion}"
                rows.append((t.onset / fps, f"matched  {kind:5s}  {said}  {spotted}"))
            else:
                rows.append((t.onset / fps, f"missed   {kind:5s}  {said}"))
        matched = {p for p, _ in pairs}
        for p, e in enumerate(got):
            if p not in matched:
                blank = " " * 30  # the width of a truth column
                spotted = f"spotted {e.onset_s:6.2f}–{e.offset_s:6.2f} s {e.emotion}"
                rows.append((e.onset_s, f"false    {kind:5s}  {blank}  {spotted}"))
    return "\n".join(counts + ([""] + [line for _, line in sorted(rows)] if rows else []))
