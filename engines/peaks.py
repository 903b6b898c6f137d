"""PeakDecoder: the apex score's local maxima, each the highest within ± ``peak_s``.

The half-maximum decoder (``engines.decoding.EventDecoder``) follows one candidate until the
score falls below half its peak. The node spotter's score rests at about half its threshold on
real video, so a candidate rarely closes: it spans several expressions, reports one of them,
and is often longer than a micro-expression, so none of them counts as micro (the flat
detection curve, docs/benchmarks.md "the decoder"). Here, as the MEGC spotting methods pick
peaks (SOFTNet, LGSNet: local maxima at least a typical half-length apart):

1. a frame is an apex when its score reaches the threshold and no frame within ``peak_s``
   seconds on either side scores higher (the earlier frame wins a tie); it is decided
   ``peak_s`` after the apex, so the look-ahead is fixed, whatever the score does next;
2. it must rise above its base, the higher of the lowest scores within ``peak_s`` before
   and after it, by more than ``prominence`` (0: any rise; a flat stretch has no apex);
3. its interval is the span around it above half-way from the lowest score of the window (up
   to ``2 · peak_s`` back, ``peak_s`` ahead) to the apex (not above 0), widened by
   ``width_scale`` and centred as the half-maximum decoder's; micro when it lasts at most
   ``micro_max_s`` (a bump still above half ``peak_s`` after its apex is not).

The threshold (fixed, running level, baseline floor) is the half-maximum decoder's, taken when
the apex frame arrived. A gap decides what the frames before it allow and is never bridged.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from engines.decoding import DecoderConfig, EventDecoder, Spotted, _Sample
from engines.labels import EMOTIONS


class PeakDecoder(EventDecoder):
    """``EventDecoder``'s interface (``update``, ``reset``, ``threshold``), apexes by local
    maxima; chosen by ``DecoderConfig.peak_s`` > 0 (``engines.decoding.new_decoder``)."""

    def __init__(self, config: DecoderConfig | None = None, baseline_floor: float = 0.0) -> None:
        super().__init__(config, baseline_floor)
        # (sample, threshold when it arrived) of the last 2 · peak_s seconds and the frames
        # not yet decided; `_next` indexes the first frame not yet judged as an apex
        self._window: deque[tuple[_Sample, float]] = deque()
        self._next = 0

    def reset(self) -> list[Spotted]:
        decided = self._judge(final=True)
        self._window.clear()
        self._next = 0
        self._first = None
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
        if not valid or not np.isfinite(score):
            return self.reset()
        if self._first is None:
            self._first = (seq, t_s)
        self._remember(t_s, score)
        sample = _Sample(seq, t_s, t_mono_ns, score, np.asarray(emotion_probs, np.float64))
        self._window.append((sample, self._threshold))
        decided = self._judge(final=False)
        # keep what a later apex can look back on: 2 · peak_s before it (its width, its base)
        while self._next > 0 and t_s - self._window[0][0].t_s > 3 * self.config.peak_s:
            self._window.popleft()
            self._next -= 1
        return decided

    def _judge(self, final: bool) -> list[Spotted]:
        """Judge every frame whose look-ahead has passed (all of them when ``final``)."""
        decided = []
        latest = self._window[-1][0] if self._window else None
        while self._next < len(self._window):
            sample, threshold = self._window[self._next]
            if not final and latest.t_s - sample.t_s < self.config.peak_s:
                break
            if sample.score >= threshold:
                decided += self._apex(self._next, latest)
            self._next += 1
        return decided

    def _apex(self, i: int, latest: _Sample) -> list[Spotted]:
        """The interval around frame ``i`` of the window when it is an apex, else nothing."""
        cfg, window = self.config, [s for s, _ in self._window]
        apex = window[i]
        near = [j for j, s in enumerate(window) if abs(s.t_s - apex.t_s) <= cfg.peak_s]
        before = [window[j].score for j in near if j < i]
        after = [window[j].score for j in near if j > i]
        if any(s > apex.score for s in after) or any(s >= apex.score for s in before):
            return []
        # prominence against the higher side (a shoulder on a plateau is not an apex); a
        # frame with nothing seen on one side has no rise there
        base = max(min(before, default=apex.score), min(after, default=apex.score))
        if apex.score - base < max(cfg.prominence, 1e-9):
            return []
        # the width against the lower side, looking back as far as the window keeps (2 ·
        # peak_s): a long bump's sides stay high within ± peak_s, and a gap cuts one side short
        low = min(s.score for s in window[: near[-1] + 1])
        half = low + 0.5 * (apex.score - low)
        left, right = i, i
        while left - 1 >= 0 and window[left - 1].score >= half:
            left -= 1
        while right + 1 <= near[-1] and window[right + 1].score >= half:
            right += 1
        return self._interval(window, left, i, right, latest)

    def _interval(
        self, window: list[_Sample], left: int, i: int, right: int, latest: _Sample
    ) -> list[Spotted]:
        cfg, apex = self.config, window[i]
        t = np.array([s.t_s for s in window])  # (W,)
        frame_s = float(np.median(np.diff(t))) if len(t) > 1 else 1 / 30
        length_s = cfg.width_scale * (t[right] - t[left] + frame_s)
        if length_s < cfg.min_duration_s:
            return []
        centre_s = 0.5 * (t[left] + t[right])
        onset_s, offset_s = centre_s - length_s / 2, centre_s + length_s / 2 - frame_s
        onset_seq = apex.seq - round((apex.t_s - onset_s) / frame_s)
        offset_seq = apex.seq + round((offset_s - apex.t_s) / frame_s)
        first_seq, first_t_s = self._first or (window[0].seq, window[0].t_s)
        if onset_seq < first_seq:  # never before the first frame seen since the last gap
            onset_seq, onset_s = first_seq, first_t_s
        if offset_seq > latest.seq:  # nor after the last one seen
            offset_seq, offset_s = latest.seq, latest.t_s
        span = window[left : right + 1]
        weights = np.array([s.score for s in span])  # (K,)
        probs = np.stack([s.emotion_probs for s in span])  # (K, 3)
        mean = (weights[:, None] * probs).sum(0) / max(weights.sum(), 1e-9)
        mean = mean / max(mean.sum(), 1e-9)
        offset_sample = min(window, key=lambda s: abs(s.t_s - offset_s))
        return [
            Spotted(
                kind="micro" if offset_s - onset_s <= cfg.micro_max_s else "macro",
                onset_seq=int(onset_seq),
                apex_seq=apex.seq,
                offset_seq=int(offset_seq),
                onset_s=onset_s,
                apex_s=apex.t_s,
                offset_s=offset_s,
                apex_score=float(apex.score),
                emotion_probs={e: round(float(p), 4) for e, p in zip(EMOTIONS, mean, strict=True)},
                emotion=EMOTIONS[int(np.argmax(mean))],
                decided_seq=latest.seq,
                decided_t_mono_ns=latest.t_mono_ns,
                offset_t_mono_ns=offset_sample.t_mono_ns,
            )
        ]
