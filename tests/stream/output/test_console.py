"""The console's truth table: an expression cut by the end of the clip is still truth, and
every truth row and spotted event is named (matched / missed / false, with its times)."""

from __future__ import annotations

from stream.output.console import clip_truth, truth_table
from stream.synthetic.truth import TruthEvent
from tests.helpers import expression


def truth(onset: int, apex: int, offset: int, kind: str = "micro") -> TruthEvent:
    return TruthEvent(onset, apex, offset, kind, "negative", (4,), 2.0, (21,))


def spotted(onset: int, offset: int, kind: str = "micro", emotion: str = "negative"):
    return expression(
        kind=kind,
        onset_frame=onset,
        apex_frame=(onset + offset) // 2,
        offset_frame=offset,
        onset_s=onset / 30,
        apex_s=(onset + offset) / 60,
        offset_s=offset / 30,
        emotion=emotion,
    )


def test_a_truth_event_cut_by_the_end_is_clipped_not_dropped():
    rows = [truth(10, 14, 20), truth(593, 598, 603), truth(700, 705, 710)]
    assert clip_truth(rows, 601) == [truth(10, 14, 20), truth(593, 598, 601)]


def test_the_table_counts_a_cut_expression_as_matched_not_false():
    # seed 0's micro at frames 593-603 of a 602-frame run (issue 23): spotted at 592-601
    table = truth_table([spotted(592, 601)], [truth(593, 598, 603)], last_frame=601)
    counts = table.splitlines()[1].split()
    assert counts[:6] == ["micro", "1", "1", "1", "0", "0"], table


def test_every_row_is_named_with_its_times():
    rows = [truth(30, 33, 36), truth(300, 303, 306), truth(60, 80, 100, kind="macro")]
    events = [spotted(31, 37), spotted(450, 456), spotted(60, 99, kind="macro", emotion="positive")]
    named = truth_table(events, rows, last_frame=600).split("\n\n")[1].splitlines()
    assert [line.split()[0] for line in named] == ["matched", "matched", "missed", "false"]
    assert "truth   1.00–  1.20 s negative  spotted   1.03–  1.23 s negative" in named[0]
    assert named[1].split()[1] == "macro" and "positive" in named[1]  # wrong emotion, matched
    assert "truth  10.00– 10.20 s" in named[2]
    assert "spotted  15.00– 15.20 s" in named[3]
