"""EventDecoder on known apex-score traces: intervals, kinds, emotions, gaps, frame rates."""

from __future__ import annotations

import numpy as np
import pytest

from engines.decoding import DecoderConfig, EventDecoder, decode_trace

POSITIVE = np.array([0.1, 0.8, 0.1])


def bump_trace(t: np.ndarray, intervals: list[tuple[float, float, float]]) -> np.ndarray:
    """The spotter's training target: a Gaussian of σ = length/4 at each apex (seconds)."""
    score = np.zeros_like(t)
    for onset, apex, offset in intervals:
        sigma = (offset - onset) / 4
        score = np.maximum(score, np.exp(-0.5 * ((t - apex) / sigma) ** 2))
    return score


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
