"""Expressions pasted onto other faces: each training expression seen on many backgrounds.

The recipe injects expressions into each real training video at a dozen random places, so the
spotter sees every background many times, always with expressions of the same injector run
on that face. Here an injected expression's own flow — ``injected − plain`` node residuals
over its interval and ``pad_s`` either side (the recipe makes both from the same frames) —
is cut out and added to the node residuals of ANOTHER plain real training video of about the
same frame rate, at places drawn each epoch; the input rows (calm-noise z-scores, context)
are then rebuilt from the sum as live. The context comes from the background's landmarks: an
expression pasted over speech is one seen during speech.

Example:
    cuts = expression_cuts(train_clips, plain_partners(train_clips))
    extra = [pasted_clip(bg, cuts, rng) for bg in backgrounds for _ in range(4)]
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from engines.models.spotter import targets
from engines.train.data import Clip, TruthInterval, as_node_input, valid_runs


@dataclass(frozen=True)
class Cut:
    """One expression's own node flow, cut from an injected clip."""

    delta: np.ndarray  # (n, O, N, 2) float32: injected − plain, 0 where either is invalid
    truth: TruthInterval  # frames relative to the cut's first frame
    fps: float
    identity: str  # the video it was cut from (never pasted back onto it)


def expression_cuts(
    clips: Sequence[Clip], partners: dict[int, Clip], pad_s: float = 0.3
) -> list[Cut]:
    """Every micro/macro expression of the injected clips that have a plain partner, with
    ``pad_s`` either side, where the whole cut is valid and no other expression is inside."""
    cuts = []
    for clip in clips:
        plain = partners.get(id(clip))
        if plain is None or clip.nodes is None or plain.nodes is None:
            continue
        pad = round(pad_s * clip.fps)
        ok = clip.valid.numpy() & plain.valid.numpy()  # (L,)
        both = clip.nodes["node_valid"] & plain.nodes["node_valid"]  # (L, O)
        delta = clip.nodes["node_residual"].astype(np.float32) - plain.nodes[
            "node_residual"
        ].astype(np.float32)  # (L, O, N, 2)
        delta *= both[..., None, None]
        for truth in clip.truth:
            start, stop = truth.onset - pad, truth.offset + pad + 1
            others = [t for t in clip.truth if t is not truth]
            if start < 0 or stop > clip.length or not ok[start:stop].all():
                continue
            if any(t.onset < stop and t.offset >= start for t in others):
                continue
            relative = dataclasses.replace(
                truth, onset=pad, apex=truth.apex - start, offset=truth.offset - start
            )
            cuts.append(Cut(delta[start:stop].copy(), relative, clip.fps, clip.identity))
    return cuts


def pasted_clip(
    background: Clip,
    cuts: Sequence[Cut],
    rng: np.random.Generator,
    spacing_s: tuple[float, float] = (1.8, 4.0),
    fps_tolerance: float = 0.1,
) -> Clip | None:
    """The plain ``background`` with cuts from other videos of about its frame rate added
    every ``spacing_s`` seconds (drawn) inside its valid stretches; None when none fits."""
    assert background.nodes is not None
    usable = [
        c
        for c in cuts
        if c.identity != background.identity and abs(c.fps / background.fps - 1.0) <= fps_tolerance
    ]
    if not usable:
        return None
    residual = background.nodes["node_residual"].astype(np.float32)  # (L, O, N, 2) a copy
    truth: list[TruthInterval] = []
    for a, b in valid_runs(background.valid, min_length=16):
        start = a + round(rng.uniform(0.3, spacing_s[0]) * background.fps)
        while True:
            cut = usable[int(rng.integers(len(usable)))]
            n = len(cut.delta)
            if start + n > b:
                break
            residual[start : start + n] += cut.delta
            truth.append(_shifted(cut.truth, start))
            start += n + round(rng.uniform(*spacing_s) * background.fps)
    if not truth:
        return None
    clip = dataclasses.replace(
        background,
        truth=truth,
        source={**background.source, "injected": True, "pasted": True},
        nodes={**background.nodes, "node_residual": residual},
    )
    clip = dataclasses.replace(clip, target=targets(clip.intervals(), clip.length))
    return as_node_input(clip)


def _shifted(truth: TruthInterval, frames: int) -> TruthInterval:
    return dataclasses.replace(
        truth, onset=truth.onset + frames, apex=truth.apex + frames, offset=truth.offset + frames
    )


def pasted_epoch(
    backgrounds: Sequence[Clip], cuts: Sequence[Cut], per_background: int, rng: np.random.Generator
) -> list[Clip]:
    """``per_background`` pasted clips for each plain real background (those nothing fits
    onto left out)."""
    made = (pasted_clip(bg, cuts, rng) for bg in backgrounds for _ in range(per_background))
    return [clip for clip in made if clip is not None]
