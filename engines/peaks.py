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

from engines.decoding import DecoderConfig, EventDecoder, Spotted, _Sample


class PeakDecoder(EventDecoder):
    """``EventDecoder``'s interface (``update``, ``reset``, ``threshold``), apexes by local
    maxima; chosen by ``DecoderConfig.peak_s`` > 0 (``engines.decoders.new_decoder``)."""

    def __init__(self, config: DecoderConfig | None = None, baseline_floor: float = 0.0) -> None:
        super().__init__(config, baseline_floor)
        # (sample, threshold when it arrived) of the last 3 · peak_s seconds and the frames
        # not yet decided; `_next` indexes the first frame not yet judged as an apex
        self._window: deque[tuple[_Sample, float]] = deque()
        self._next = 0

    def reset(self) -> list[Spotted]:
        decided = self._judge(final=True)
        self._window.clear()
        self._next = 0
        self._first = None
        return decided

    def _step(self, sample: _Sample) -> list[Spotted]:
        self._window.append((sample, self._threshold))
        decided = self._judge(final=False)
        # keep what a later apex can look back on: 2 · peak_s before it (its width, its base)
        while self._next > 0 and sample.t_s - self._window[0][0].t_s > 3 * self.config.peak_s:
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
