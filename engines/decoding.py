"""EventDecoder: streaming peak finding on the spotter's apex score, with a fixed look-ahead.

The spotter regresses a Gaussian bump around each apex whose σ is a quarter of the
expression's length (``engines.models.spotter.targets``), so an interval spans ≈ 1.7 × the bump's
full width at half maximum. Per frame the decoder:

1. keeps a running threshold: median + ``mad_k`` × MAD of the apex score over the last
   ``history_s`` seconds of valid frames (robust: expressions fill far less than half of any
   stretch), floored by the person's baseline floor (``calibration/baseline.py``) and by
   ``min_threshold`` — never a whole-video statistic;
2. opens a candidate when the score rises above the threshold (taking in the frames just
   before it that were already above half of it) and follows its peak;
3. once the score has fallen below half the peak, estimates the interval from the
   half-maximum crossings widened to the full length, and decides ``lookahead_s`` (≈ 250 ms)
   after that estimated offset unless the score rises again (then it goes on). The apex
   is the peak, the kind is micro when onset→offset ≤ ``micro_max_s`` (in seconds, so any
   frame rate works), macro otherwise; the emotion is the score-weighted mean of the
   emotion probabilities inside the half-maximum span.

"Half" is measured above 0, or (``relative_half``) above the score's resting level, its
running median: a score that rests at half its threshold never falls below half of a peak, so
one candidate stays open across several expressions and reports one of them.

Every interval lies inside the frames the decoder saw: the widened span is clamped to the
first frame since the start or the last gap (``reset``) and to the last frame seen, so an
event at the start or end of a clip, or right after a gap, never names a frame that was not
analysed.

A gap (invalid row) closes a candidate early and is never bridged. Known limit: the bump is
centred on the apex, so onset and offset come out symmetric around it; an apex at a third of
the interval puts both boundaries a sixth of its length off (IoU still ≥ 0.6).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, replace

import numpy as np

from engines.labels import EMOTIONS

# The terms the threshold is the largest of (``EventDecoder.threshold_term``): the running
# level (median + mad_k × MAD of the recent score), the person's baseline floor, the minimum;
# "fixed" when the decoder keeps no running level (``adaptive=False``).
THRESHOLD_TERMS = ("running level", "baseline floor", "minimum", "fixed")
REST_EVERY_S = 0.25  # how often (media time) the resting level of ``relative_half`` is taken


@dataclass(frozen=True)
class DecoderConfig:
    lookahead_s: float = 0.25
    history_s: float = 30.0
    mad_k: float = 6.0
    min_threshold: float = 0.3
    prebuffer_s: float = 1.0  # frames kept before a candidate opens, for its rising edge
    micro_max_s: float = 0.5
    min_duration_s: float = 0.12  # shorter bumps are noise (blinks last 100-400 ms: the model
    # is trained to ignore them; this only drops single-frame spikes)
    width_scale: float = 1.70  # interval length / FWHM of the apex bump (σ = length / 4)
    # multiplies the whole threshold (running level, baseline floor and min_threshold): the
    # one knob a detection curve sweeps (benchmarks.bench_spotting --curve); 1 live
    threshold_scale: float = 1.0
    # False: no running level at all, the threshold is min_threshold (the node spotter's
    # operating point, engines/train/operating.py) and any baseline floor
    adaptive: bool = True
    # True: half maximum (where an interval ends, its width) and the rising edge are measured
    # above the score's resting level (its running median) instead of above 0. A score that
    # rests well above 0 (the node spotter's: median ≈ half its threshold on real video)
    # otherwise keeps one candidate open across several expressions, and a lower threshold
    # only merges more of them into one interval (the flat detection curve). Not the default:
    # on validation it finds more at 2 false events per minute and less at 0.5-1, where the
    # merging also merges false alarms (docs/benchmarks.md, "the decoder")
    relative_half: bool = False
    # > 0: apexes are the score's local maxima, each the highest within ± peak_s seconds and
    # decided peak_s after it (engines.peaks.PeakDecoder); 0: the half-maximum decoder here
    peak_s: float = 0.0
    prominence: float = 0.0  # (peak_s > 0) how far an apex must rise above its base


def fixed_decoder(threshold: float, base: DecoderConfig | None = None) -> DecoderConfig:
    """The decoder with one fixed threshold: no running level (the live stage applies no
    baseline floor to a node spotter either)."""
    return replace(base or DecoderConfig(), min_threshold=float(threshold), adaptive=False)


@dataclass
class Spotted:
    """A decoded interval; ``stream.output.events.ExpressionEvent`` is built from it."""

    kind: str
    onset_seq: int
    apex_seq: int
    offset_seq: int
    onset_s: float
    apex_s: float
    offset_s: float
    apex_score: float
    emotion_probs: dict[str, float]
    emotion: str
    decided_seq: int
    decided_t_mono_ns: int
    offset_t_mono_ns: int


@dataclass
class _Sample:
    seq: int
    t_s: float
    t_mono_ns: int
    score: float
    emotion_probs: np.ndarray  # (3,)


class EventDecoder:
    """Feeds on one frame at a time: ``update(...)`` returns the intervals decided now."""

    def __init__(self, config: DecoderConfig | None = None, baseline_floor: float = 0.0) -> None:
        self.config = config or DecoderConfig()
        self.baseline_floor = baseline_floor
        self._history: deque[tuple[float, float]] = deque()  # (t_s, score) of valid frames
        self._sorted_dirty = True
        self._threshold = self.config.min_threshold * self.config.threshold_scale
        # Which term of the threshold binds now (THRESHOLD_TERMS): what `mexlive inspect`
        # writes on the plot where the threshold moves.
        self.threshold_term = "minimum" if self.config.adaptive else "fixed"
        self._frames_since_threshold = 0
        self._candidate: list[_Sample] = []
        self._recent: deque[_Sample] = deque()
        self._peak = 0.0
        self._rest = 0.0  # the score's resting level (relative_half), else 0
        self._rest_block = -1  # the media-clock block it was last taken in
        self._below_since: float | None = None
        # (seq, t_s) of the first valid frame since the start or the last gap: no interval
        # may begin before it (those frames were never analysed, or lie across a gap).
        self._first: tuple[int, float] | None = None

    @property
    def threshold(self) -> float:
        return self._threshold

    def reset(self) -> list[Spotted]:
        """A gap or the end: decide what the open candidate holds (if anything) and start
        afresh; the next interval cannot begin before the next frame seen."""
        decided = self._decide()
        self._first = None
        return decided

    def _decide(self) -> list[Spotted]:
        """Close the open candidate (if any); the frames seen so far stay usable."""
        decided = self._close() if self._candidate else []
        self._candidate, self._peak, self._below_since = [], 0.0, None
        self._recent.clear()
        return decided

    def update(
        self,
        seq: int,
        t_s: float,
        t_mono_ns: int,
        score: float,
        emotion_probs: np.ndarray | None,
        valid: bool = True,
    ) -> list[Spotted]:
        if not valid or not math.isfinite(score):
            return self.reset()
        if self._first is None:
            self._first = (seq, t_s)
        self._remember(t_s, score)
        sample = _Sample(seq, t_s, t_mono_ns, score, np.asarray(emotion_probs, np.float64))
        return self._step(sample)

    def _step(self, sample: _Sample) -> list[Spotted]:
        """One valid frame through the half-maximum candidate (``engines.peaks`` overrides
        this with its local maxima)."""
        score, t_s = sample.score, sample.t_s
        if not self._candidate:
            if score >= self._threshold:
                rising, edge = [], self._above_rest(self._threshold, 0.25)
                while self._recent and self._recent[-1].score >= edge:
                    rising.append(self._recent.pop())
                self._candidate = [*reversed(rising), sample]
                self._peak, self._below_since = score, None
            else:
                self._recent.append(sample)
                while t_s - self._recent[0].t_s > self.config.prebuffer_s:
                    self._recent.popleft()
            return []
        self._candidate.append(sample)
        if score >= self._above_rest(self._peak, 0.5):
            self._peak, self._below_since = max(score, self._peak), None
            return []
        if self._below_since is None:  # the falling half-maximum crossing: estimate the end
            self._below_since = self._estimated_offset_s()
        if t_s - self._below_since >= self.config.lookahead_s:
            return self._decide()  # not a gap: the next event may reach back before this frame
        return []

    def _estimated_offset_s(self) -> float:
        """Offset implied by the candidate's full width at half maximum (peak centred)."""
        samples = self._candidate
        half = self._above_rest(self._peak, 0.5)
        above = [s.t_s for s in samples if s.score >= half]
        if not above:  # a bump under the resting level (relative_half): no width, end now
            return samples[-1].t_s
        frame_s = (samples[-1].t_s - samples[0].t_s) / max(len(samples) - 1, 1)
        fwhm_s = above[-1] - above[0] + frame_s
        return 0.5 * (above[0] + above[-1]) + self.config.width_scale * fwhm_s / 2

    def _above_rest(self, level: float, share: float) -> float:
        """The score ``share`` of the way from the resting level up to ``level``."""
        return self._rest + share * (level - self._rest)

    def _remember(self, t_s: float, score: float) -> None:
        history = self._history
        history.append((t_s, score))
        while history and t_s - history[0][0] > self.config.history_s:
            history.popleft()
        self._frames_since_threshold += 1
        block = math.floor(t_s / REST_EVERY_S)
        if self.config.relative_half and (block != self._rest_block or len(history) < 15):
            # the running median, taken on the media clock (so a chunk of a long video whose
            # warm-up covers history_s takes it at the same frames as a run from the start).
            # A threshold scaled below it keeps only bumps that rise above it: a half maximum
            # under the resting level would span the whole stretch.
            self._rest_block = block
            self._rest = float(np.median(np.fromiter((s for _, s in history), np.float64)))
        if not self.config.adaptive:
            floored = self.baseline_floor > self.config.min_threshold
            self.threshold_term = "baseline floor" if floored else "fixed"
            level = max(self.baseline_floor, self.config.min_threshold)
            self._threshold = level * self.config.threshold_scale
        elif self._frames_since_threshold >= 15:  # a quantile every 15 frames is plenty
            self._frames_since_threshold = 0
            scores = np.fromiter((s for _, s in history), np.float64, len(history))
            median = float(np.median(scores))
            mad = float(np.median(np.abs(scores - median)))
            terms = {
                "running level": median + self.config.mad_k * mad,
                "baseline floor": self.baseline_floor,
                "minimum": self.config.min_threshold,
            }
            self.threshold_term = max(terms, key=terms.__getitem__)
            self._threshold = terms[self.threshold_term] * self.config.threshold_scale

    @property
    def history_span_s(self) -> float:
        """Seconds of valid frames the running level is taken over now (at most
        ``history_s``): short after the start or a long gap, so the level is less steady."""
        return self._history[-1][0] - self._history[0][0] if self._history else 0.0

    def _close(self) -> list[Spotted]:
        samples = self._candidate
        scores = np.array([s.score for s in samples])  # (N,)
        peak_i = int(np.argmax(scores))
        half = scores >= self._above_rest(float(scores[peak_i]), 0.5)
        left = peak_i
        while left > 0 and half[left - 1]:
            left -= 1
        right = peak_i
        while right + 1 < len(samples) and half[right + 1]:
            right += 1
        # the candidate holds every frame up to the latest one seen
        return self._interval(samples, left, peak_i, right, samples[-1])

    def _interval(
        self, samples: list[_Sample], left: int, peak_i: int, right: int, last: _Sample
    ) -> list[Spotted]:
        """The event of the apex ``samples[peak_i]`` whose half-maximum span is
        ``samples[left..right]``, widened to its full length and centred there, decided at
        ``last`` (the latest frame seen); none when shorter than ``min_duration_s``."""
        cfg = self.config
        scores = np.array([s.score for s in samples])  # (N,)
        t = np.array([s.t_s for s in samples])  # (N,)
        frame_s = float(np.median(np.diff(t))) if len(t) > 1 else 1 / 30
        fwhm_s = t[right] - t[left] + frame_s
        length_s = cfg.width_scale * fwhm_s
        if length_s < cfg.min_duration_s:
            return []
        apex = samples[peak_i]
        centre_s = 0.5 * (t[left] + t[right])
        onset_s, offset_s = centre_s - length_s / 2, centre_s + length_s / 2 - frame_s
        onset_seq = apex.seq - round((apex.t_s - onset_s) / frame_s)
        offset_seq = apex.seq + round((offset_s - apex.t_s) / frame_s)
        # The widened span can reach past the frames seen (a bump at the start or end of a
        # clip, or just after a gap): clamp it to them, frame and seconds together.
        first_seq, first_t_s = self._first or (samples[0].seq, samples[0].t_s)
        if onset_seq < first_seq:
            onset_seq, onset_s = first_seq, first_t_s
        if offset_seq > last.seq:
            offset_seq, offset_s = last.seq, last.t_s
        weights = scores[left : right + 1]
        probs = np.stack([s.emotion_probs for s in samples[left : right + 1]])  # (K, 3)
        mean = (weights[:, None] * probs).sum(0) / max(weights.sum(), 1e-9)
        mean = mean / max(mean.sum(), 1e-9)
        offset_sample = min(samples, key=lambda s: abs(s.t_s - offset_s))
        return [
            Spotted(
                # onset→offset (clamped) as reported in the event (duration_ms), so the two
                # never disagree
                kind="micro" if offset_s - onset_s <= cfg.micro_max_s else "macro",
                onset_seq=int(onset_seq),
                apex_seq=apex.seq,
                offset_seq=int(offset_seq),
                onset_s=onset_s,
                apex_s=apex.t_s,
                offset_s=offset_s,
                apex_score=float(scores[peak_i]),
                emotion_probs={e: round(float(p), 4) for e, p in zip(EMOTIONS, mean, strict=True)},
                emotion=EMOTIONS[int(np.argmax(mean))],
                decided_seq=last.seq,
                decided_t_mono_ns=last.t_mono_ns,
                offset_t_mono_ns=offset_sample.t_mono_ns,
            )
        ]
