"""The figure of ``mexlive inspect`` and its table, on hand-made traces (no video to decode):
bars labelled in seconds, no verdict without a truth, kind mismatches named, threshold moves
explained."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.colors import to_hex

from engines.decoding import DecoderConfig, EventDecoder
from stream.app.inspect import format_table
from stream.app.inspect_plot import VERDICT_COLOURS, figure
from stream.app.inspection import Featurized, SpotterTrace, kind_mismatches, match_truth
from stream.face.features import FACE_ROIS
from stream.synthetic.truth import TruthEvent
from tests.helpers import expression

FPS = 30.0
L = 150  # 5 s


def features() -> Featurized:
    names = tuple(f"{roi}.mag_on" for roi in FACE_ROIS)
    return Featurized(
        path=Path("clip.mp4"),
        fps=FPS,
        seq=np.arange(L),
        t_s=np.arange(L) / FPS,
        values=np.full((L, len(names)), 0.1, np.float32),
        valid=np.ones(L, bool),
        names=names,
    )


def event(kind: str, onset: int, offset: int):
    return expression(
        kind=kind,
        onset_frame=onset,
        apex_frame=(onset + offset) // 2,
        offset_frame=offset,
        onset_s=onset / FPS,
        apex_s=(onset + offset) // 2 / FPS,
        offset_s=offset / FPS,
    )


def truth_row(kind: str, onset: int, offset: int) -> TruthEvent:
    return TruthEvent(onset, (onset + offset) // 2, offset, kind, "positive", (12,), 1.0, (48,))


# Three events: one matches the truth micro, one is a macro over the truth micro at 90-101
# (the right place, the wrong kind), one lies where the truth has nothing.
EVENTS = [event("micro", 30, 41), event("macro", 89, 102), event("micro", 120, 130)]
TRUTH = [truth_row("micro", 30, 40), truth_row("micro", 90, 101)]


def trace(events=EVENTS, truth=TRUTH) -> SpotterTrace:
    threshold = np.r_[np.full(30, 0.30), np.full(30, 0.60), np.full(L - 60, 0.32)]
    terms = ["minimum"] * 30 + ["running level"] * 30 + ["baseline floor"] * (L - 60)
    out = SpotterTrace(
        "learned",
        np.full(L, 0.1),
        threshold,
        list(events),
        threshold_term=terms,
        decoder=DecoderConfig(),
        calibrated_s=2.0,
    )
    if truth is not None:
        out.matches = match_truth(out.events, truth)
        out.mismatches = kind_mismatches(out.events, truth, out.matches)
    else:
        out.matches = [None] * len(events)
    return out


@pytest.fixture
def drawn():
    figures = []

    def draw(spotter_trace: SpotterTrace, truth):
        fig = figure(features(), [spotter_trace], truth)
        figures.append(fig)
        panel = fig.axes[0]
        texts = [text.get_text() for text in panel.texts]
        legend = [text.get_text() for text in fig.legends[0].get_texts()]
        colours = {to_hex(line.get_color()) for line in panel.lines}
        return texts, legend, colours

    yield draw
    for fig in figures:
        plt.close(fig)


def test_event_bars_are_labelled_in_seconds(drawn):
    texts, _, _ = drawn(trace(), TRUTH)
    assert "micro positive 1.00-1.37 s" in texts  # frames 30-41 at 30 fps
    assert not [t for t in texts if "30-41" in t]  # no frame numbers on an axis in seconds


def test_without_truth_no_event_is_judged(drawn):
    texts, legend, colours = drawn(trace(truth=None), None)
    assert "spotted (no truth given)" in legend
    assert not [x for x in legend if "match" in x]  # neither "matches truth" nor "no match"
    assert VERDICT_COLOURS["spotted"] in colours
    assert not colours & {VERDICT_COLOURS[v] for v in ("no match", "matches truth")}
    assert not [t for t in texts if "mismatch" in t]


def test_with_truth_each_verdict_has_its_colour_and_a_kind_mismatch_is_named(drawn):
    texts, legend, colours = drawn(trace(), TRUTH)
    assert {VERDICT_COLOURS[v] for v in ("matches truth", "kind mismatch", "no match")} <= colours
    assert "macro positive 2.97-3.40 s (kind mismatch)" in texts
    assert "spotted, kind mismatch (truth of the other kind)" in legend


def test_every_move_of_the_threshold_says_why(drawn):
    texts, legend, _ = drawn(trace(), TRUTH)
    notes = [t for t in texts if t[:4] in ("0.30", "0.60", "0.32")]
    assert notes == [
        "0.30: the minimum 0.3",
        "0.60: running level: median + 6×MAD of the score over the last ≤ 30 s",
        "0.32: baseline floor from calibration (the first seconds of face)",
    ]
    assert "calibrated" in texts and "running threshold" in legend


def test_a_fixed_threshold_is_drawn_as_one_note(drawn):
    # The shipped node spotter decodes at one fixed operating point: the line cannot jump.
    fixed = trace()
    fixed.decoder = DecoderConfig(min_threshold=0.63, adaptive=False)
    decoder = EventDecoder(fixed.decoder)
    levels = []
    for i, score in enumerate(np.random.default_rng(1).random(L)):
        decoder.update(i, i / FPS, int(i / FPS * 1e9), float(score), None)
        levels.append(decoder.threshold)
    fixed.threshold, fixed.threshold_term = np.array(levels), ["fixed"] * L
    texts, legend, _ = drawn(fixed, TRUTH)
    assert [t for t in texts if "threshold" in t] == [
        "0.63: fixed threshold (the weights' operating point)"
    ]
    assert "threshold (fixed)" in legend


def test_the_table_names_a_kind_mismatch():
    table = format_table([trace()], TRUTH)
    rows = table.splitlines()
    assert rows[2].endswith("30-40 micro positive")  # matched
    assert rows[3].endswith("kind mismatch: truth 90-101 micro positive")
    assert rows[4].endswith("no match")
    assert kind_mismatches(EVENTS, TRUTH, [0, None, None]) == [None, 1, None]


def test_the_node_panel_marks_what_makes_a_stretch_not_spottable():
    from dataclasses import replace

    from stream.face.nodes import GROUPS

    marks = np.zeros(L, bool)
    marks[40:70] = True
    with_nodes = replace(
        features(),
        node_groups=np.full((L, len(GROUPS)), 0.5, np.float32),
        speaking=np.zeros(L, bool),
        blink=np.zeros(L, bool),
        brows_moving=marks,
    )
    fig = figure(with_nodes, [trace()], TRUTH)
    try:
        panel = next(ax for ax in fig.axes if ax.get_ylabel() == "node motion")
        labels = {line.get_label() for line in panel.lines}
        assert "brows moving" in labels and "speaking" not in labels
        (line,) = [line for line in panel.lines if line.get_label() == "brows moving"]
        assert line.get_xdata()[0] == pytest.approx(40 / FPS)
    finally:
        plt.close(fig)
