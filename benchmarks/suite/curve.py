"""The detection curve and the stage-wise detectability of the suite's real rows.

``measure(injected, plain)`` labels every injected expression (``labels.py``), computes every
stage's signal on every clip (``stages.py``), and returns a ``Measured`` that holds:

- per spotter, a threshold-multiplier sweep (``engines.eval.detection.sweep``) over the
  injected and the plain clips, and the oracle: a threshold on the strongest region's raw
  shift, every threshold tried, chosen on this suite itself (``threshold_curve``). The oracle is
  a BOUND on what the front end carries (no live spotter can pick its threshold on the data it
  is scored on), never a result;
- per stage and per expression, the share of the same video's plain windows of the same length
  whose peak the expression's peak beats (ties half): the mean of that over any set of
  expressions is the stage's AUC on that set (0.5 is chance);
- false alarms on plain video by the distractor they coincide with, for the spotters at their
  default threshold and for every stage signal at the threshold that gives 2 per minute.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace

import numpy as np

from benchmarks.suite.front_end import brows_still, front_end, node_noise, node_noise_by_video
from benchmarks.suite.labels import (
    DISTRACTORS,
    GROUPS,
    EventLabel,
    amplitude_90,
    amplitude_bin,
    context_of,
    distractor_of,
    face_context,
    primary_group,
)
from benchmarks.suite.stages import (
    NODE_BUMP_STAGE,
    NODE_STAGE,
    SPOTTERS,
    STAGES,
    ClipSignals,
    SuiteClip,
    clip_signals,
)
from engines.context import ClipContext, clip_context
from engines.eval.detection import (
    SweepPoint,
    ThresholdPoint,
    Truth,
    alarm_spans,
    auc,
    sweep,
    threshold_curve,
    windows,
)

# Threshold multipliers of the sweep: 1/8 … 16 geometric, and 1 (the default) exactly.
SCALES = tuple(sorted({1.0, *np.round(np.geomspace(0.125, 16.0, 29), 4).tolist()}))
LOCALISED_STAGES = ("raw shift, own group", "normalised motion, own group")
NODE_OWN = f"{NODE_STAGE}, own group"
DISTRACTOR_RATE = 2.0  # false alarms per minute at which each stage's distractors are counted
GATED = " + context gate"  # the same spotter with the live stage's ContextGate
# the learned spotter's scores through the decoder with half maxima above the score's resting
# level (``DecoderConfig.relative_half``): not live, measured beside it
RESTING = ", half above the resting level"


@dataclass
class Measured:
    """Everything the report prints (see the module docstring)."""

    labels: list[EventLabel]
    plain_minutes: float
    sweeps: dict[str, list[SweepPoint]]  # per spotter
    oracle: list[ThresholdPoint]
    rank: dict[str, np.ndarray]  # stage → (K,) per-expression AUC share
    distractors: dict[str, dict[str, int]]  # row → distractor → false alarms
    plain_share: dict[str, float]  # distractor → share of plain frames on one
    clips: tuple[int, int] = (0, 0)  # injected, plain
    videos: list[str] = field(default_factory=list)
    front_end: dict[str, np.ndarray] = field(default_factory=dict)  # see ``_front_end``
    node_oracle: list[ThresholdPoint] | None = None  # the same bound on the node residual
    # and on the learned spotter's apex score: what its decoder loses is the gap to its sweep
    score_oracle: list[ThresholdPoint] | None = None
    rank_matched: dict[str, np.ndarray] = field(default_factory=dict)  # same-context windows
    rank_spottable: dict[str, np.ndarray] = field(default_factory=dict)  # spottable on both sides
    node_noise: dict[str, dict[str, float]] = field(default_factory=dict)  # see ``node_noise``
    node_noise_videos: dict[str, dict[str, float]] = field(default_factory=dict)  # per video

    def mask(self, **where: str) -> np.ndarray:
        """(K,) expressions whose label fields equal ``where`` (e.g. context="calm")."""
        return np.array([all(getattr(e, k) == v for k, v in where.items()) for e in self.labels])

    def stage_auc(
        self, stage: str, mask: np.ndarray | None = None, matched: bool | str = False
    ) -> float:
        """Mean share over the ``mask``ed expressions; ``matched``: True for same-context
        windows, "spottable" for spottable expressions against spottable windows."""
        rank = {False: self.rank, True: self.rank_matched, "spottable": self.rank_spottable}[
            matched
        ]
        values = rank[stage] if mask is None else rank[stage][mask]
        values = values[np.isfinite(values)]
        return float(values.mean()) if values.size else float("nan")


def measure(
    injected: list[SuiteClip], plain: list[SuiteClip], weights: str | None = None, say=None
) -> Measured:
    """The whole instrument over loaded clips (every injected clip has its plain partner)."""
    say = say or (lambda line: print(line, file=sys.stderr, flush=True))
    partner = {clip.video: k for k, clip in enumerate(plain)}
    injected = [clip for clip in injected if clip.video in partner]
    say(f"curve: signals of {len(plain)} plain and {len(injected)} injected clips")
    plain_sig = [clip_signals(clip, weights) for clip in plain]
    plain_ctx = [_context(clip) for clip in plain]
    inj_sig = []
    for k, clip in enumerate(injected, start=1):
        inj_sig.append(clip_signals(clip, weights))
        if k % 5 == 0:
            say(f"curve: {k}/{len(injected)} injected clips")
    labels, truths = _labels(injected, [plain_ctx[partner[c.video]] for c in injected])
    # the live spottable rule on each plain clip (calm and brows still); an expression is
    # spottable when its video's face was, at its onset, without it
    calm = [~(c.blink | c.speaking | c.head_moving) for c in plain_ctx]  # (L,) each
    still = [brows_still(clip) for clip in plain]  # (L,) each
    spottable = [c & s for c, s in zip(calm, still, strict=True)]
    labels = [
        replace(e, spottable=bool(spottable[partner[injected[e.clip].video]][e.onset]))
        for e in labels
    ]
    gate = _gate(injected, plain)
    sweeps = {}
    for name in SPOTTERS:
        for suffix, keep in (("", None), (GATED, gate)):
            sweeps[name + suffix] = sweep(
                [(sig.traces[name], truth) for sig, truth in zip(inj_sig, truths, strict=True)],
                [sig.traces[name] for sig in plain_sig],
                _decoder(name, weights),
                SCALES,
                keep=keep,
            )
    sweeps["learned" + RESTING] = sweep(
        [(sig.traces["learned"], truth) for sig, truth in zip(inj_sig, truths, strict=True)],
        [sig.traces["learned"] for sig in plain_sig],
        replace(_decoder("learned", weights), relative_half=True),
        SCALES,
    )
    raw_peaks = np.array([_peak(inj_sig[e.clip].raw, injected[e.clip], e) for e in labels])
    plain_raw = [
        (sig.raw, clip.valid, clip.fps) for sig, clip in zip(plain_sig, plain, strict=True)
    ]
    partners = [partner[c.video] for c in injected]
    rank = _ranks(labels, injected, inj_sig, partners, plain, plain_sig, plain_ctx)
    rank_matched = _ranks(labels, injected, inj_sig, partners, plain, plain_sig, plain_ctx, True)
    rank_spottable = _ranks(
        labels, injected, inj_sig, partners, plain, plain_sig, plain_ctx, spottable=spottable
    )
    node_oracle = None
    if all(sig.node is not None for sig in (*inj_sig, *plain_sig)):
        node_peaks = np.array([_peak(inj_sig[e.clip].node, injected[e.clip], e) for e in labels])
        plain_node = [(sig.node, c.valid, c.fps) for sig, c in zip(plain_sig, plain, strict=True)]
        node_oracle = threshold_curve(node_peaks, plain_node)
    score_peaks = np.array(
        [_peak(inj_sig[e.clip].traces["learned"].score, injected[e.clip], e) for e in labels]
    )
    plain_score = [
        (sig.traces["learned"].score, c.valid, c.fps)
        for sig, c in zip(plain_sig, plain, strict=True)
    ]
    measured = Measured(
        labels=labels,
        plain_minutes=sum(clip.minutes for clip in plain),
        sweeps=sweeps,
        oracle=threshold_curve(raw_peaks, plain_raw),
        node_oracle=node_oracle,
        score_oracle=threshold_curve(score_peaks, plain_score),
        rank=rank,
        rank_matched=rank_matched,
        rank_spottable=rank_spottable,
        distractors={},
        plain_share=_plain_share(plain_ctx),
        clips=(len(injected), len(plain)),
        videos=sorted({clip.video for clip in plain}),
    )
    measured.distractors = _distractors(measured, plain, plain_sig, plain_ctx)
    pairs = [(clip, plain[partner[clip.video]]) for clip in injected]
    measured.front_end = front_end(labels, pairs)
    measured.node_noise = node_noise(labels, pairs, plain, calm)
    measured.node_noise_videos = node_noise_by_video(plain, calm, still)
    return measured


def _gate(injected: list[SuiteClip], plain: list[SuiteClip]):
    """The live stage's ``ContextGate`` on decided events: the context of each clip from its
    own landmarks with the live detectors' settings, the moving regions at the apex as the
    live stage names them (top 3 by onset flow magnitude)."""
    from stream.face.features import FACE_ROIS
    from stream.live.context import ContextGate
    from stream.live.spotting import MAG_ON

    gate = ContextGate()
    clips = {False: injected, True: plain}
    contexts = {
        key: [clip_context(c.landmarks_px, np.arange(c.length) / c.fps, _seen(c)) for c in group]
        for key, group in clips.items()
    }

    def keep(is_plain: bool, k: int, event) -> bool:
        clip, context = clips[is_plain][k], contexts[is_plain][k]
        inside = slice(event.onset_seq, event.offset_seq + 1)
        margin = round(gate.blink_margin_s * clip.fps)
        near = slice(max(event.onset_seq - margin, 0), event.offset_seq + margin + 1)
        summary = {
            "speaking": bool(context.speaking[inside].any()),
            "blink": bool(context.blink[near].any()),
        }
        mags = clip.values[event.apex_seq, MAG_ON]
        rois = [FACE_ROIS[i] for i in np.argsort(mags)[::-1][:3]]
        return gate.reason(event.kind, summary, rois) is None

    return keep


def _seen(clip: SuiteClip) -> np.ndarray:
    return clip.valid & np.isfinite(clip.landmarks_px).all(axis=(1, 2))


def _decoder(spotter: str, weights: str | None):
    """The decoder settings the live stage uses for this spotter."""
    from stream.live.spotting import SpottingStage

    return SpottingStage(
        lambda e: None, weights=weights, backend="torch", spotter=spotter
    ).decoder.config


def _context(clip: SuiteClip) -> ClipContext:
    return face_context(clip.landmarks_px, clip.valid, clip.fps)


def _labels(
    injected: list[SuiteClip], contexts: list[ClipContext]
) -> tuple[list[EventLabel], list[list[Truth]]]:
    labels, truths = [], []
    for c, (clip, context) in enumerate(zip(injected, contexts, strict=True)):
        truth = []
        for j in range(len(clip.onset)):
            if str(clip.kind[j]) != "micro":
                continue
            onset, apex, offset = int(clip.onset[j]), int(clip.apex[j]), int(clip.offset[j])
            amp = amplitude_90(float(clip.peak_px[j]), clip.landmarks_px, apex)
            labels.append(
                EventLabel(
                    clip=c,
                    onset=onset,
                    apex=apex,
                    offset=offset,
                    amplitude_90=amp,
                    amplitude_bin=amplitude_bin(amp),
                    context=context_of(onset, offset, clip.fps, context),
                    group=primary_group(clip.aus[j]),
                )
            )
            truth.append(Truth(onset, apex, offset))
        truths.append(truth)
    return labels, truths


def _peak(signal: np.ndarray, clip: SuiteClip, event: EventLabel) -> float:
    span = slice(event.onset, event.offset + 1)
    inside = np.where(clip.valid[span], signal[span], np.nan)
    return float(np.nanmax(inside)) if np.isfinite(inside).any() else float("nan")


def _signal(sig: ClipSignals, stage: str, group: str) -> np.ndarray:
    if stage == NODE_OWN:
        return sig.node_groups[:, GROUPS.index(group)]
    if stage == LOCALISED_STAGES[0]:
        return sig.raw_groups[:, GROUPS.index(group)]
    if stage == LOCALISED_STAGES[1]:
        return sig.motion_groups[:, GROUPS.index(group)]
    return sig.stage(stage)


def _ranks(
    labels,
    injected,
    inj_sig,
    partner_of,
    plain,
    plain_sig,
    plain_ctx,
    matched: bool = False,
    spottable: list[np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """Per stage, (K,) the share of the plain partner's equal-length windows each expression's
    peak beats (NaN when the expression has no valid frame). ``matched``: only the windows
    whose own context (``context_of`` on the window) is the expression's: a calm expression
    against calm stretches, what a spotter that knows the context would face. ``spottable``
    ((L,) bool per plain clip, the live rule): only the spottable expressions (NaN for the
    others), against the windows that start on a spottable frame."""
    out = {}
    with_nodes = all(sig.node is not None for sig in (*inj_sig, *plain_sig))
    node_stages = (NODE_STAGE, NODE_OWN, NODE_BUMP_STAGE) if with_nodes else ()
    for stage in (*STAGES, *LOCALISED_STAGES, *node_stages):
        shares = []
        for e in labels:
            clip, p = injected[e.clip], partner_of[e.clip]
            if spottable is not None and not e.spottable:
                shares.append(float("nan"))
                continue
            peak = _peak(_signal(inj_sig[e.clip], stage, e.group), clip, e)
            length = e.offset - e.onset + 1
            signal = _signal(plain_sig[p], stage, e.group)
            starts, negatives = windows(signal, plain[p].valid, length, max(length // 2, 1))
            if matched:
                same = [
                    context_of(s, s + length - 1, plain[p].fps, plain_ctx[p]) == e.context
                    for s in starts
                ]
                negatives = negatives[np.array(same, bool)] if same else negatives
            if spottable is not None:
                negatives = negatives[spottable[p][np.asarray(starts, int)]]
            shares.append(auc([peak], negatives) if np.isfinite(peak) else float("nan"))
        out[stage] = np.array(shares)
    return out


def _plain_share(contexts: list[ClipContext]) -> dict[str, float]:
    frames = sum(len(c.blink) for c in contexts)
    share = {
        "blink": sum(int(c.blink.sum()) for c in contexts),
        "head motion": sum(int(c.head_moving.sum()) for c in contexts),
        "speaking": sum(int(c.speaking.sum()) for c in contexts),
    }
    return {k: v / max(frames, 1) for k, v in share.items()}


def _distractors(measured: Measured, plain, plain_sig, plain_ctx) -> dict[str, dict[str, int]]:
    """False alarms on plain video by distractor: the spotters at their default threshold, and
    each stage signal at the threshold of ``DISTRACTOR_RATE`` per minute."""
    rows: dict[str, dict[str, int]] = {}
    for name in measured.sweeps:
        default = next(p for p in measured.sweeps[name] if p.scale == 1.0)
        counts = dict.fromkeys(DISTRACTORS, 0)
        for k, event in default.false_events:
            counts[
                distractor_of(event.onset_seq, event.offset_seq, plain[k].fps, plain_ctx[k])
            ] += 1
        rows[f"{name} spotter, default threshold"] = counts
    for stage in STAGES:
        counts = dict.fromkeys(DISTRACTORS, 0)
        signals = [sig.stage(stage) for sig in plain_sig]
        threshold = _threshold_for_rate(signals, plain, DISTRACTOR_RATE)
        for signal, clip, context in zip(signals, plain, plain_ctx, strict=True):
            for start, end in _runs(signal >= threshold, clip.valid, clip.fps):
                counts[distractor_of(start, end, clip.fps, context)] += 1
        rows[f"{stage} ≥ its {DISTRACTOR_RATE:g}/min threshold ({threshold:.3g})"] = counts
    return rows


def _threshold_for_rate(signals, plain, rate: float) -> float:
    """The lowest threshold at which the runs on plain video are ≤ ``rate`` per minute."""
    minutes = sum(clip.minutes for clip in plain)
    values = np.unique(np.concatenate([s[c.valid] for s, c in zip(signals, plain, strict=True)]))
    lo, hi = 0, len(values) - 1
    while lo < hi:  # runs fall as the threshold rises: bisect on the sorted values
        mid = (lo + hi) // 2
        runs = sum(
            len(_runs(s >= values[mid], c.valid, c.fps))
            for s, c in zip(signals, plain, strict=True)
        )
        if runs / minutes <= rate:
            hi = mid
        else:
            lo = mid + 1
    return float(values[lo])


def _runs(above: np.ndarray, valid: np.ndarray, fps: float) -> list[tuple[int, int]]:
    """The alarms of a threshold on one clip, as the oracle counts them (``alarm_spans``)."""
    return alarm_spans(above, valid, max(round(0.25 * fps), 1), max(round(0.5 * fps), 1))
