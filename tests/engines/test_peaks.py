"""PeakDecoder on known apex-score traces: local maxima as apexes, a fixed look-ahead."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from engines.decoders import decode_trace, new_decoder
from engines.decoding import DecoderConfig, EventDecoder, fixed_decoder
from engines.peaks import PeakDecoder
from tests.helpers import bump_trace

POSITIVE = np.array([0.1, 0.8, 0.1])
PEAKS = replace(fixed_decoder(0.7), peak_s=0.25)


def decode(t: np.ndarray, score: np.ndarray, config: DecoderConfig, valid=None):
    decoder = new_decoder(config)
    out = []
    for i, (ti, si) in enumerate(zip(t, score, strict=True)):
        ok = True if valid is None else bool(valid[i])
        out += decoder.update(i, float(ti), int(ti * 1e9), float(si), POSITIVE, ok)
    return out + decoder.reset()


def test_the_config_picks_the_decoder():
    assert type(new_decoder(PEAKS)) is PeakDecoder
    assert type(new_decoder(fixed_decoder(0.7))) is EventDecoder
    assert type(new_decoder()) is EventDecoder


@pytest.mark.parametrize("fps", [25.0, 30.0, 200.0])
def test_close_expressions_on_a_resting_score_are_three_events(fps):
    # a score resting at 0.45 (the node spotter's rests near half its threshold) with three
    # micro bumps to 0.9 one second apart: the half-maximum decoder above 0 merges them
    t = np.arange(int(8 * fps)) / fps
    truth = [(2.0, 2.15, 2.3), (3.0, 3.15, 3.3), (4.0, 4.15, 4.3)]
    score = 0.45 + 0.45 * bump_trace(t, truth)
    assert len(decode(t, score, fixed_decoder(0.7))) == 1
    events = decode(t, score, PEAKS)
    assert [e.kind for e in events] == ["micro"] * 3
    for event, (onset, apex, offset) in zip(events, truth, strict=True):
        assert event.apex_s == pytest.approx(apex, abs=1 / fps + 1e-9)
        # half-way from the base to the apex is the bump's own half maximum: the interval
        # comes back within 20 % of its length plus two frames
        tolerance = 0.2 * (offset - onset) + 2 / fps
        assert event.onset_s == pytest.approx(onset, abs=tolerance)
        assert event.offset_s == pytest.approx(offset, abs=tolerance)
        assert event.emotion == "positive"
        # decided peak_s after the apex, whatever the score does next (within a frame)
        assert t[event.decided_seq] - event.apex_s == pytest.approx(0.25, abs=1 / fps + 1e-9)


def test_a_long_bump_is_one_macro_event():
    t = np.arange(300) / 30
    (event,) = decode(t, bump_trace(t, [(4.0, 5.0, 6.0)]), PEAKS)
    assert event.kind == "macro"
    assert event.apex_s == pytest.approx(5.0, abs=1 / 30)


def test_a_wiggle_on_a_plateau_needs_its_prominence():
    t = np.arange(300) / 30
    score = np.full(t.size, 0.75)  # a flat stretch above the threshold has no apex
    score[148:153] = [0.77, 0.79, 0.8, 0.79, 0.77]  # 0.05 above its surroundings
    (event,) = decode(t, score, PEAKS)
    assert event.apex_seq == 150
    assert decode(t, score, replace(PEAKS, prominence=0.1)) == []


def test_nothing_below_the_threshold():
    t = np.arange(900) / 30
    noise = np.abs(np.random.default_rng(1).normal(0, 0.05, t.size))
    assert decode(t, noise, PEAKS) == []


def test_a_gap_is_never_bridged_and_intervals_stay_inside_what_was_seen():
    t = np.arange(300) / 30
    score = bump_trace(t, [(4.0, 4.15, 4.3), (4.6, 4.75, 4.9)])
    valid = np.ones(t.size, bool)
    gap = slice(int(4.25 * 30), int(4.6 * 30))
    valid[gap] = False  # face lost right after the first apex, back before the second
    events = decode(t, score, PEAKS, valid)
    assert [round(e.apex_s, 2) for e in events] == [4.13, 4.73]  # ties: the earlier frame
    first, second = events
    assert first.offset_seq < gap.start  # decided at the gap with the frames before it
    assert second.onset_seq >= gap.stop


def test_decode_trace_uses_the_peak_decoder():
    t = np.arange(300)
    score = 0.45 + 0.45 * np.exp(-0.5 * ((t - 100) / 3.0) ** 2)
    score += 0.45 * np.exp(-0.5 * ((t - 125) / 3.0) ** 2)  # another apex 0.83 s later
    probs = np.tile([0.1, 0.8, 0.1], (300, 1))
    assert len(decode_trace(score, probs, 30.0, config=fixed_decoder(0.7))) == 1
    assert [e.apex_seq for e in decode_trace(score, probs, 30.0, config=PEAKS)] == [100, 125]
