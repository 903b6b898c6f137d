"""EventDecoder on known apex-score traces: intervals, kinds, emotions, gaps, frame rates."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from engines.decoders import decode_trace
from engines.decoding import DecoderConfig, EventDecoder, fixed_decoder
from tests.helpers import bump_trace

POSITIVE = np.array([0.1, 0.8, 0.1])


def decode(t: np.ndarray, score: np.ndarray, valid=None, config=None):
    decoder = EventDecoder(config or DecoderConfig())
    out = []
    for i, (ti, si) in enumerate(zip(t, score, strict=True)):
        ok = True if valid is None else bool(valid[i])
        out += decoder.update(i, float(ti), int(ti * 1e9), float(si), POSITIVE, ok)
    out += decoder.reset()
    return out


@pytest.mark.parametrize(
    "fps, jitter",
    [
        (30.0, 0.0),  # a steady camera
        (200.0, 0.0),  # a high-speed research camera
        (12.0, 0.3),  # a browser webcam: low and uneven rate
    ],
)
def test_recovers_intervals_and_kinds_in_seconds(fps, jitter):
    rng = np.random.default_rng(0)
    n = int(20 * fps)
    t = np.arange(n) / fps + rng.uniform(0, jitter / fps, n)
    truth = [(3.0, 3.15, 3.35), (8.0, 8.5, 9.5), (14.0, 14.12, 14.4)]  # micro, macro, micro
    events = decode(t, bump_trace(t, truth))
    assert [e.kind for e in events] == ["micro", "macro", "micro"]
    for event, (onset, apex, offset) in zip(events, truth, strict=True):
        assert event.apex_s == pytest.approx(apex, abs=1.5 / fps + 0.01)
        # The bump is centred on the apex, so an apex at a third of the interval puts the
        # boundaries L/6 off (still IoU >= 0.6): the decoder cannot see the asymmetry.
        tolerance = 0.2 * (offset - onset) + 2 / fps
        assert event.onset_s == pytest.approx(onset, abs=tolerance)
        assert event.offset_s == pytest.approx(offset, abs=tolerance)
        assert event.emotion == "positive"
        # decided a look-ahead after the score fell: never before the offset, not much after
        decided_s = t[event.decided_seq]
        assert offset - 0.1 <= decided_s <= offset + 0.6


def test_noise_below_threshold_gives_nothing():
    t = np.arange(900) / 30
    noise = np.abs(np.random.default_rng(1).normal(0, 0.05, t.size))
    assert decode(t, noise) == []


def test_running_threshold_adapts_to_a_noisy_person():
    t = np.arange(1800) / 30
    rng = np.random.default_rng(2)
    noisy = np.clip(rng.normal(0.25, 0.08, t.size), 0, 1)  # a restless baseline
    decoder = EventDecoder()
    for i, (ti, si) in enumerate(zip(t, noisy, strict=True)):
        decoder.update(i, ti, 0, si, POSITIVE)
    assert decoder.threshold > 0.45  # well above the quantile of the restless baseline
    assert EventDecoder(baseline_floor=0.6).threshold >= 0.3  # the floor only raises it


def test_a_gap_is_never_bridged():
    t = np.arange(300) / 30
    score = bump_trace(t, [(4.0, 4.5, 5.5)])
    valid = np.ones(t.size, bool)
    valid[int(4.6 * 30) : int(4.8 * 30)] = False  # face lost right after the apex
    events = decode(t, score, valid)
    assert all(not (e.onset_s < 4.6 < e.offset_s and e.offset_s > 4.8) for e in events)


def test_single_frame_spike_is_dropped():
    t = np.arange(300) / 30
    score = np.zeros(t.size)
    score[150] = 0.9
    assert decode(t, score, config=DecoderConfig(min_duration_s=0.12)) == []


def test_decode_trace_recovers_a_bump():
    # A recorded trace (training's validation, LOSO) through the live decoder, frame by frame.
    t = np.arange(300)
    apex = np.exp(-0.5 * ((t - 100) / 3.0) ** 2)  # a 12-frame micro at 30 fps
    probs = np.tile([0.1, 0.8, 0.1], (300, 1))
    (event,) = decode_trace(apex, probs, fps=30.0)
    assert event.kind == "micro" and event.apex_seq == 100 and event.emotion == "positive"
    assert abs((event.offset_seq - event.onset_seq + 1) - 12) <= 2


def _bump_at(length: int, apex: int, sigma: float = 3.0) -> np.ndarray:
    t = np.arange(length)
    return np.exp(-0.5 * ((t - apex) / sigma) ** 2)


def _assert_inside(event, first: int, last: int, fps: float) -> None:
    assert first <= event.onset_seq <= event.apex_seq <= event.offset_seq <= last
    # seconds follow the clamped frames (frame i at i / fps), so duration_ms agrees with them
    assert event.onset_s >= first / fps - 1e-9 and event.offset_s <= last / fps + 1e-9
    assert event.onset_s <= event.apex_s <= event.offset_s
    duration_s = event.offset_s - event.onset_s
    assert event.kind == ("micro" if duration_s <= DecoderConfig().micro_max_s else "macro")


@pytest.mark.parametrize(
    "apex, sigma",
    [
        (2, 3.0),  # a micro whose widened span starts ~8 frames before the first frame
        (297, 3.0),  # one at the very end: the span runs ~8 frames past the last
        (1, 8.0),  # a macro at the start, apex on frame 1
        (298, 8.0),  # a macro at the end
    ],
)
def test_events_at_the_edges_of_a_trace_stay_inside_it(apex, sigma):
    length, fps = 300, 30.0
    probs = np.tile(POSITIVE, (length, 1))
    (event,) = decode_trace(_bump_at(length, apex, sigma), probs, fps=fps)
    assert event.apex_seq == apex
    _assert_inside(event, 0, length - 1, fps)
    # clamped, not dropped or shifted: the boundary on the edge's side is the edge itself
    assert event.onset_seq == 0 if apex < length // 2 else event.offset_seq == length - 1


def test_an_event_right_after_a_gap_does_not_reach_before_it():
    length, fps = 300, 30.0
    score = _bump_at(length, 112)  # its widened span would start near frame 104
    valid = np.ones(length, bool)
    valid[100:110] = False  # face lost for frames 100-109
    probs = np.tile(POSITIVE, (length, 1))
    (event,) = decode_trace(score, probs, fps=fps, valid=valid)
    assert event.apex_seq == 112
    _assert_inside(event, 110, length - 1, fps)
    assert event.onset_seq == 110


def test_a_decision_is_not_a_gap_for_the_next_event():
    # Two bumps close together: the second's onset may reach back before the frame on which
    # the first was decided (those frames were analysed), unlike after a gap.
    length, fps = 300, 30.0
    score = np.maximum(_bump_at(length, 100), _bump_at(length, 125, sigma=8.0))
    probs = np.tile(POSITIVE, (length, 1))
    first, second = decode_trace(score, probs, fps=fps)
    assert second.apex_seq == 125
    assert second.onset_seq <= first.decided_seq


def test_a_fixed_decoder_keeps_its_threshold_whatever_the_face_does():
    from engines.decoding import fixed_decoder

    decoder = EventDecoder(fixed_decoder(0.4), baseline_floor=0.0)
    rng = np.random.default_rng(0)
    probs = np.full(3, 1 / 3)
    for i in range(900):  # 30 s of a face whose score hovers high (a talker)
        decoder.update(i, i / 30, i, 0.3 + 0.05 * rng.random(), probs)
        assert decoder.threshold == 0.4
    adaptive = EventDecoder(DecoderConfig(min_threshold=0.05), baseline_floor=0.0)
    for i in range(900):
        adaptive.update(i, i / 30, i, 0.3 + 0.05 * rng.random(), probs)
    assert adaptive.threshold > 0.3  # the running level follows the face


def terms_over(decoder: EventDecoder, scores: np.ndarray, fps: float = 30.0) -> list[str]:
    """The binding threshold term after each frame of ``scores``."""
    out = []
    for i, score in enumerate(scores):
        decoder.update(i, i / fps, int(i / fps * 1e9), float(score), POSITIVE)
        out.append(decoder.threshold_term)
    return out


def test_the_binding_threshold_term_is_named():
    rng = np.random.default_rng(0)
    decoder = EventDecoder(DecoderConfig(min_threshold=0.3, mad_k=6.0))
    calm = terms_over(decoder, np.full(30, 0.05))  # median + 6 MAD = 0.05 < the minimum
    assert set(calm) == {"minimum"} and decoder.threshold == pytest.approx(0.3)
    noisy = terms_over(decoder, 0.3 + 0.2 * rng.random(300))  # a spread the minimum is below
    assert noisy[-1] == "running level" and decoder.threshold > 0.3
    decoder.baseline_floor = 5.0  # what calibration sets: the person's own floor
    assert terms_over(decoder, np.full(15, 0.4))[-1] == "baseline floor"
    assert decoder.threshold == pytest.approx(5.0)


def test_a_fixed_threshold_is_named_fixed_until_a_floor_lies_above_it():
    decoder = EventDecoder(fixed_decoder(0.63))
    assert set(terms_over(decoder, np.linspace(0, 1, 60))) == {"fixed"}
    assert decoder.threshold == pytest.approx(0.63)  # never moves with the score
    decoder.baseline_floor = 0.8
    assert terms_over(decoder, [0.1])[-1] == "baseline floor"


def _resting_trace(fps: float = 30.0) -> tuple[np.ndarray, np.ndarray, list[tuple]]:
    """A score resting at 0.45 (as the node spotter's rests near half its threshold), with
    three micro-expression bumps to 0.9 one second apart."""
    t = np.arange(int(8 * fps)) / fps
    truth = [(2.0, 2.15, 2.3), (3.0, 3.15, 3.3), (4.0, 4.15, 4.3)]
    return t, 0.45 + 0.45 * bump_trace(t, truth), truth


def test_half_maxima_above_the_resting_level_keep_close_expressions_apart():
    t, score, truth = _resting_trace()
    above_zero = decode(t, score, config=fixed_decoder(0.7))
    # half of 0.9 is under the resting level: one candidate from the first bump to the end
    assert len(above_zero) == 1
    events = decode(t, score, config=replace(fixed_decoder(0.7), relative_half=True))
    assert [e.kind for e in events] == ["micro"] * 3
    for event, (onset, apex, offset) in zip(events, truth, strict=True):
        assert event.apex_s == pytest.approx(apex, abs=1 / 30 + 1e-9)
        assert event.onset_s == pytest.approx(onset, abs=0.2 * (offset - onset) + 2 / 30)
        assert event.offset_s == pytest.approx(offset, abs=0.2 * (offset - onset) + 2 / 30)


def test_a_lower_threshold_over_a_resting_score_finds_more_not_one_long_candidate():
    rng = np.random.default_rng(1)
    t, score, _ = _resting_trace()
    score = score + rng.normal(0.0, 0.01, score.shape)  # the resting level's own jitter
    loose = DecoderConfig(threshold_scale=0.3)
    # above 0: the threshold under the resting level opens one candidate that closes only
    # when the trace ends, and reports one of the three (the flat detection curve of
    # docs/benchmarks.md: lowering the threshold finds nothing more)
    merged = decode(t, score, config=fixed_decoder(0.7, loose))
    assert len(merged) == 1 and merged[0].decided_seq == len(t) - 1
    relative = DecoderConfig(relative_half=True)
    assert len(decode(t, score, config=fixed_decoder(0.7, relative))) == 3
    split = decode(t, score, config=fixed_decoder(0.7, replace(relative, threshold_scale=0.3)))
    # above the resting level: every bump that rises above it (and the jitter's larger
    # wiggles) is its own event, none spanning the trace
    assert len(split) >= 3
    assert max(e.offset_s - e.onset_s for e in split) < 1.0
