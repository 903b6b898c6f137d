"""Detection curves and detectability: what one operating point hides.

"0 of 36 found at the default threshold" cannot tell a score that ranks every expression just
below talking from one that never rises at all. So a spotter is read as a curve and every
stage of the chain as a ranking:

- **FROC**: the decoder's whole threshold times a multiplier (``DecoderConfig.threshold_scale``)
  is swept; at each multiplier, recall on injected expressions against false events per minute
  of plain video (``sweep``), then the best recall at ≤ 0.5, 1, 2 and 5 false events per minute
  (``recall_at``). A spotter's per-frame decoder input is recorded once (``ScoreTrace``) and
  decoded again per multiplier, exactly as the live decoder would (``decode_scaled``).
- **Detection vs localisation**: an expression is *detected* when a spotted interval of the
  kind contains its apex, *localised* when it is matched one-to-one at IoU ≥ 0.5 (MEGC), so a
  boundary error is told apart from a miss.
- **Detectability**: ``auc`` of a signal's peak inside each expression against the peaks of
  equal-length windows of plain video (``window_peaks``): 0.5 is chance, 1 a perfect ranking.
- **Threshold on a raw signal** (the oracle bound): ``threshold_curve`` counts the runs above a
  threshold on plain video as false alarms and the expressions whose peak reaches it as found.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from engines.decoders import new_decoder
from engines.decoding import DecoderConfig, Spotted
from engines.eval.metrics import spotting_matches

FA_TARGETS = (0.5, 1.0, 2.0, 5.0)  # false micro events per minute of plain video


def auc(positives: Sequence[float], negatives: Sequence[float]) -> float:
    """P(positive > negative) + ½ P(tie): the Mann–Whitney U over n_pos · n_neg; NaN when
    either side is empty."""
    pos = np.asarray(positives, np.float64)
    neg = np.sort(np.asarray(negatives, np.float64))
    if pos.size == 0 or neg.size == 0:
        return float("nan")
    below = np.searchsorted(neg, pos, side="left")  # (P,) negatives strictly below
    ties = np.searchsorted(neg, pos, side="right") - below  # (P,)
    return float((below + 0.5 * ties).sum() / (pos.size * neg.size))


def window_peaks(signal: np.ndarray, valid: np.ndarray, length: int, stride: int) -> np.ndarray:
    """Peaks of ``signal`` (L,) over windows of ``length`` frames every ``stride`` frames;
    a window with an invalid frame is left out (an expression's interval has a face)."""
    return windows(signal, valid, length, stride)[1]


def windows(
    signal: np.ndarray, valid: np.ndarray, length: int, stride: int
) -> tuple[np.ndarray, np.ndarray]:
    """(starts, peaks) of the windows ``window_peaks`` keeps, (W,) each."""
    signal = np.where(np.asarray(valid, bool), signal, np.nan)  # (L,)
    starts = np.arange(0, len(signal) - length + 1, max(stride, 1))  # (W,)
    if length < 1 or starts.size == 0:
        return np.zeros(0, np.int64), np.zeros(0)
    spans = signal[starts[:, None] + np.arange(length)[None, :]]  # (W, length)
    whole = np.isfinite(spans).all(axis=1)  # (W,)
    return starts[whole], spans[whole].max(axis=1)


@dataclass
class ScoreTrace:
    """A spotter's decoder input over one clip, recorded once from the live stage.

    Attributes:
        score: (L,) apex score (any value where not valid).
        emotion_probs: (L, 3) emotion probabilities.
        valid: (L,) frames that reached the decoder as valid.
        fps: frame i is at i / fps s.
        floor_from: first frame whose decoding used the person's baseline floor (-1: never).
        floor: that floor (``EventDecoder.baseline_floor``).
        ready_from: the frame the spotter knew the person from: an interval that starts
            before it is not reported (as the live stage; past the end: never ready).
    """

    score: np.ndarray
    emotion_probs: np.ndarray
    valid: np.ndarray
    fps: float
    floor_from: int = -1
    floor: float = 0.0
    ready_from: int = 0

    @property
    def minutes(self) -> float:
        return len(self.score) / self.fps / 60.0


def decode_scaled(trace: ScoreTrace, config: DecoderConfig, scale: float = 1.0) -> list[Spotted]:
    """The streaming decoder over a recorded trace with its threshold times ``scale``; at
    ``scale`` 1 the live stage's own intervals (the floor applies from ``floor_from`` as the
    stage applied it, and nothing that starts before ``ready_from`` is kept)."""
    decoder = new_decoder(replace(config, threshold_scale=scale))
    decided: list[Spotted] = []
    for i in range(len(trace.score)):
        if i == trace.floor_from:
            decoder.baseline_floor = trace.floor
        t_s = i / trace.fps
        ok = bool(trace.valid[i])
        score = float(trace.score[i]) if ok else 0.0
        probs = trace.emotion_probs[i] if ok else None
        decided += decoder.update(i, t_s, round(t_s * 1e9), score, probs, ok)
    return [s for s in decided + decoder.reset() if s.onset_seq >= trace.ready_from]


@dataclass(frozen=True)
class Truth:
    """A true expression, frames 0-based inclusive."""

    onset: int
    apex: int
    offset: int
    kind: str = "micro"


def detected(spotted: Sequence[Spotted], truth: Sequence[Truth], kind: str = "micro") -> np.ndarray:
    """(K,) bool: a spotted interval of ``kind`` contains the true apex."""
    spans = [(s.onset_seq, s.offset_seq) for s in spotted if s.kind == kind]
    return np.array([any(a <= t.apex <= b for a, b in spans) for t in truth], bool)


def localised(
    spotted: Sequence[Spotted], truth: Sequence[Truth], kind: str = "micro"
) -> np.ndarray:
    """(K,) bool: matched one-to-one at IoU ≥ 0.5 by a spotted interval of ``kind`` (MEGC)."""
    pred = [(s.onset_seq, s.offset_seq) for s in spotted if s.kind == kind]
    found = np.zeros(len(truth), bool)
    for _, j in spotting_matches(pred, [(t.onset, t.offset) for t in truth]):
        found[j] = True
    return found


@dataclass
class SweepPoint:
    """One multiplier of a sweep: per-expression outcomes and the false-alarm rate."""

    scale: float
    detected: np.ndarray  # (K,) bool over every injected expression, in suite order
    localised: np.ndarray  # (K,) bool
    false_per_min: float  # events of the kind on plain video per minute
    false_events: list[tuple[int, Spotted]]  # (plain clip index, event)

    def recall(self, mask: np.ndarray | None = None, localise: bool = False) -> float:
        hits = self.localised if localise else self.detected
        hits = hits if mask is None else hits[mask]
        return float(hits.mean()) if hits.size else float("nan")


Keep = Callable[[bool, int, Spotted], bool]  # (plain?, clip index, event) -> reported?


def sweep(
    injected: Sequence[tuple[ScoreTrace, Sequence[Truth]]],
    plain: Sequence[ScoreTrace],
    config: DecoderConfig,
    scales: Sequence[float],
    kind: str = "micro",
    keep: Keep | None = None,
) -> list[SweepPoint]:
    """Each multiplier over every injected and plain trace (see the module docstring);
    ``keep`` filters the decided events as a gate after the decoder would (the live stage's
    ``ContextGate``)."""
    minutes = sum(trace.minutes for trace in plain)
    keep = keep or (lambda plain, k, event: True)
    points = []
    for scale in scales:
        det, loc = [], []
        for k, (trace, truth) in enumerate(injected):
            spotted = [s for s in decode_scaled(trace, config, scale) if keep(False, k, s)]
            det.append(detected(spotted, truth, kind))
            loc.append(localised(spotted, truth, kind))
        false = [
            (k, s)
            for k, trace in enumerate(plain)
            for s in decode_scaled(trace, config, scale)
            if s.kind == kind and keep(True, k, s)
        ]
        rate = len(false) / minutes if minutes else float("nan")
        points.append(SweepPoint(scale, _cat(det), _cat(loc), rate, false))
    return points


def _cat(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts) if parts else np.zeros(0, bool)


def best_at(points: Sequence[SweepPoint], max_false_per_min: float) -> SweepPoint | None:
    """The point with the best detection recall at ≤ ``max_false_per_min`` (ties: fewer false
    alarms); None when no multiplier is that quiet."""
    quiet = [p for p in points if p.false_per_min <= max_false_per_min]
    if not quiet:
        return None
    return max(quiet, key=lambda p: (p.detected.sum(), -p.false_per_min))


def recall_at(
    points: Sequence[SweepPoint],
    targets: Sequence[float] = FA_TARGETS,
    mask: np.ndarray | None = None,
) -> list[float]:
    """Detection recall (of the ``mask``ed expressions) at each false-alarm target; the point
    is chosen on all expressions, so every slice of a table reads one operating point. 0 where
    no multiplier is quiet enough."""
    out = []
    for target in targets:
        point = best_at(points, target)
        out.append(0.0 if point is None else point.recall(mask))
    return out


def alarm_spans(
    above: np.ndarray, valid: np.ndarray, merge: int, longest: int
) -> list[tuple[int, int]]:
    """The alarms a threshold raises: (start, end) inclusive runs of ``above & valid`` (L,),
    runs fewer than ``merge`` frames apart joined (as the decoder's look-ahead would), and a
    run longer than ``longest`` frames cut into pieces of at most that length (a threshold low
    enough to sit above a whole stretch of video is one alarm per expression-length, not one
    alarm in all)."""
    idx = np.flatnonzero(np.asarray(above, bool) & np.asarray(valid, bool))
    if idx.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(idx) > merge)
    starts = np.concatenate([[idx[0]], idx[breaks + 1]]).tolist()
    ends = np.concatenate([idx[breaks], [idx[-1]]]).tolist()
    spans = []
    for start, end in zip(starts, ends, strict=True):
        for piece in range(start, end + 1, max(longest, 1)):
            spans.append((piece, min(piece + longest - 1, end)))
    return spans


def count_runs(above: np.ndarray, valid: np.ndarray, merge: int, longest: int = 1 << 30) -> int:
    """How many alarms ``alarm_spans`` raises."""
    return len(alarm_spans(above, valid, merge, longest))


@dataclass
class ThresholdPoint:
    """One threshold on a raw signal: per-expression outcome and false alarms per minute."""

    threshold: float
    detected: np.ndarray  # (K,) bool: the expression's peak reaches the threshold
    false_per_min: float

    def recall(self, mask: np.ndarray | None = None, localise: bool = False) -> float:
        hits = self.detected if mask is None else self.detected[mask]
        return float(hits.mean()) if hits.size else float("nan")


def threshold_curve(
    event_peaks: np.ndarray,
    plain: Sequence[tuple[np.ndarray, np.ndarray, float]],
    merge_s: float = 0.25,
    longest_s: float = 0.5,
) -> list[ThresholdPoint]:
    """A threshold on a raw signal at every event peak (the best any threshold can do).

    Args:
        event_peaks: (K,) the signal's peak inside each expression (NaN: never seen).
        plain: (signal (L,), valid (L,), fps) of each plain clip.
        merge_s: runs closer than this count as one false alarm.
        longest_s: a longer run counts once per this length (``alarm_spans``).
    """
    minutes = sum(len(signal) / fps / 60.0 for signal, _, fps in plain)
    peaks = np.nan_to_num(np.asarray(event_peaks, np.float64), nan=-np.inf)
    candidates = np.unique(peaks[np.isfinite(peaks)])
    points = []
    for threshold in candidates:
        false = sum(
            count_runs(
                np.nan_to_num(s, nan=-np.inf) >= threshold,
                v,
                max(1, round(merge_s * f)),
                max(1, round(longest_s * f)),
            )
            for s, v, f in plain
        )
        points.append(ThresholdPoint(float(threshold), peaks >= threshold, false / minutes))
    return points
