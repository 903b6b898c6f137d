"""Training augmentation for the node spotter: more faces from the few real ones we have.

The spotter fitted its own training videos almost perfectly (in-sample AUC ≈ 1) and ranked
unseen ones at 0.6–0.7 (docs/models.md, "steps"): with about 40 real backgrounds it learns
them. Two transformations make new, plausible backgrounds from the node residuals each epoch,
before the input rows are built (so the calm-noise z-scores and the context are recomputed):

- **mirror**: the face seen in a mirror (left and right nodes swapped, dx negated). The context
  (eye aperture, lip rhythm, head speed) is symmetric, so the landmarks stay as they are.
- **background gain**: an injected real clip is its plain video plus the injected expression
  (the recipe makes both from the same frames, so ``injected − plain`` is the expression's own
  flow and the codec's difference). The plain part is scaled by a gain drawn per clip, the
  expression is not: the same expression on a stiller or a livelier face. A plain clip is
  scaled by its own draw; a clip without a plain partner (the synthetic families) is not.

Every draw comes from the generator passed in: same seed, same epochs.

Example:
    partners = plain_partners(train_clips)
    epoch_clips = augment_epoch(train_clips, partners, Augment(True, (0.7, 1.3)), rng)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from engines.node_inputs import MIRROR_NODES
from engines.train.data import Clip, as_node_input


@dataclass(frozen=True)
class Augment:
    mirror: bool = False  # mirror half of the clips each epoch
    background_gain: tuple[float, float] = (1.0, 1.0)  # uniform range of the plain part's gain

    @property
    def active(self) -> bool:
        return self.mirror or self.background_gain != (1.0, 1.0)


def mirror_residual(residual: np.ndarray) -> np.ndarray:
    """(L, O, N, 2) node residuals as seen in a mirror: nodes swapped left↔right, dx negated."""
    mirrored = residual[:, :, list(MIRROR_NODES)].copy()  # (L, O, N, 2)
    mirrored[..., 0] *= -1.0
    return mirrored


def is_plain_real(clip: Clip) -> bool:
    """A real video's node clip with nothing injected: a background."""
    return clip.family == "real" and clip.nodes is not None and not clip.source.get("injected")


def plain_partners(clips: Sequence[Clip]) -> dict[int, Clip]:
    """id(injected real clip) → the plain clip of the same video (same identity and length,
    nothing injected); clips without one are left out."""
    plain = {c.identity: c for c in clips if is_plain_real(c)}
    partners = {}
    for clip in clips:
        partner = plain.get(clip.identity)
        if (
            clip.family == "real"
            and clip.source.get("injected", False)
            and clip.nodes is not None
            and partner is not None
            and partner.length == clip.length
        ):
            partners[id(clip)] = partner
    return partners


def with_background_gain(clip: Clip, plain: Clip | None, gain: float) -> np.ndarray:
    """(L, O, N, 2) the clip's residual with its plain part scaled by ``gain``: the plain clip
    itself when ``plain`` is None and the clip is plain; unchanged when it has no partner."""
    assert clip.nodes is not None
    residual = clip.nodes["node_residual"].astype(np.float32)  # (L, O, N, 2)
    if plain is None:
        return residual * gain if is_plain_real(clip) else residual
    assert plain.nodes is not None
    both = clip.nodes["node_valid"] & plain.nodes["node_valid"]  # (L, O)
    # injected = plain + expression → gain·plain + expression = injected + (gain − 1)·plain
    background = plain.nodes["node_residual"].astype(np.float32) * both[..., None, None]
    return residual + (gain - 1.0) * background


def augment_epoch(
    clips: Sequence[Clip],
    partners: dict[int, Clip],
    augment: Augment,
    rng: np.random.Generator,
) -> list[Clip]:
    """One epoch's training clips: each node clip with a fresh gain and mirror draw, its input
    rows rebuilt (``as_node_input``); clips without node arrays unchanged."""
    out = []
    low, high = augment.background_gain
    for clip in clips:
        gain, flip = float(rng.uniform(low, high)), augment.mirror and bool(rng.random() < 0.5)
        if clip.nodes is None:
            out.append(clip)
            continue
        scaled = (id(clip) in partners or is_plain_real(clip)) and (low, high) != (1.0, 1.0)
        if not scaled and not flip:
            out.append(clip)
            continue
        if scaled:
            residual = with_background_gain(clip, partners.get(id(clip)), gain)
        else:
            residual = clip.nodes["node_residual"].astype(np.float32)
        if flip:
            residual = mirror_residual(residual)
        changed = dataclasses.replace(clip, nodes={**clip.nodes, "node_residual": residual})
        out.append(as_node_input(changed))
    return out
