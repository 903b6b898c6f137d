"""The spotter's training loop: deterministic, the best epoch chosen on held-out identities.

Training (ME-TST's video-level regression): random crops of 300–600 frames from the training
clips' valid stretches (a gap resets the live model, so no crop spans one), batches of 8, Adam
with a cosine learning-rate decay, the loss of ``engines.models.spotter.loss`` (0.9·MSE(apex) +
0.1·CE(emotion) + a small micro/macro CE). Features are normalised by the training set's mean
and std, stored in the model (``set_normalization``).

Hard negatives: after every epoch, the current model runs over the training clips of real
video (``Clip.family == "real"``); the frames where it fires (apex score ≥ ``hard_score``) with
no expression annotated there become the centres of ``hard_share`` of the next epoch's crops.
Real talking, blinks and head motion are what a spotter trained on synthetic faces mistakes for
expressions; this shows the model its own mistakes until it stops making them.

Validation after every epoch on HELD-OUT identities (never the test identities): each
validation clip is run whole and decoded by the live decoder (``engines.train.validation``),
then scored with MEGC F1. The epoch with the best overall validation F1 (then the lowest
validation loss) is kept; with ``select="froc"`` (the node spotter, which runs at one fixed
threshold) the best mean recall at 0.5, 1 and 2 false micro events per minute of real
validation video comes first (``engines.train.operating.froc``), then the score's ranking of
them (``ranking_auc``). ``passes`` sets the optimizer steps per epoch. Same data + same config →
same weights on the same machine.

Augmentation (node clips, fresh draws each epoch from generators of their own, so the crops
draw what they drew without it): ``mirror`` and ``background_gain`` (``engines/train/augment.py``)
and ``paste`` (``engines/train/paste.py``: injected expressions on other plain real videos).

The command line (weights + manifest) is ``python -m engines.train`` (``engines/train/spotter.py``).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from engines.models.spotter import IGNORE, Spotter, SpotterConfig, loss_terms
from engines.train.augment import Augment, augment_epoch, is_plain_real, plain_partners
from engines.train.data import Clip, DataError, feature_stats, valid_runs
from engines.train.operating import froc
from engines.train.paste import expression_cuts, pasted_epoch
from engines.train.validation import evaluate


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 40
    seed: int = 0
    batch: int = 8
    crop_min: int = 300
    crop_max: int = 600
    lr: float = 2e-3
    weight_decay: float = 1e-4
    clip_grad: float = 1.0
    threads: int = 2
    d_model: int = 64
    n_layers: int = 2
    hard_share: float = 0.25  # share of each epoch's crops centred on mined hard negatives
    hard_score: float = 0.3  # apex score at which a frame without truth is a hard negative
    # the node spotter's spatial encoder (engines/node_inputs.py); () for region rows
    group_sizes: tuple[int, ...] = ()
    node_width: int = 0
    # weight of the apex error on frames inside an expression's bump (target > 0.05): they
    # are ~5 % of real frames, so an unweighted MSE is content with a flat zero
    pos_weight: float = 1.0
    # what picks the epoch: "f1" (MEGC F1 under the live running threshold), "froc" (mean
    # recall of real validation micro-expressions at 0.5, 1 and 2 false micro events per
    # minute, fixed thresholds: how the node spotter runs and is judged, then the AUC) or
    # "auc" (the score's ranking of them, engines.train.operating.ranking_auc, then FROC)
    select: str = "f1"
    # crops per epoch, in passes over the training frames: one pass over recipe3 is 29
    # optimizer steps, and 12 such epochs left the node spotter far from fitting even its
    # training videos (docs/models.md, "steps"); validation still runs once an epoch
    passes: int = 1
    # node clips only, fresh draws each epoch (engines/train/augment.py): mirror half of them;
    # scale the plain part of real clips (the expression of injected ones kept) by a gain
    mirror: bool = False
    background_gain: tuple[float, float] = (1.0, 1.0)
    # per plain real training video, this many copies each epoch with expressions of OTHER
    # videos pasted onto it (engines/train/paste.py); 0: none
    paste: int = 0
    # weight of the loss on each crop's highest scores far from any expression
    # (engines.models.spotter.top_negative_term): where a fixed threshold fails first; 0: off
    top_weight: float = 0.0


# ---- batches ------------------------------------------------------------------------------


def _crops(
    clips: Sequence[Clip],
    cfg: TrainConfig,
    rng: np.random.Generator,
    hard: Sequence[tuple[Clip, int]] = (),
):
    """One epoch's batches: (x (B, T, F), target apex/kind/emotion (B, T), mask (B, T)).
    ``hard``: (clip, frame) hard negatives; a ``hard_share`` of the crops is centred on them."""
    runs = [(c, a, b) for c in clips for a, b in valid_runs(c.valid, min_length=16)]
    if not runs:
        raise DataError("no valid stretch of >= 16 frames in the training clips")
    lengths = np.array([b - a for _, a, b in runs], np.float64)
    mean_crop = 0.5 * (cfg.crop_min + cfg.crop_max)
    n_crops = max(cfg.batch, math.ceil(cfg.passes * lengths.sum() / mean_crop))  # each ≈ passes×
    n_batches = math.ceil(n_crops / cfg.batch)
    for _ in range(n_batches):
        size = int(rng.integers(cfg.crop_min, cfg.crop_max + 1))
        picks = rng.choice(len(runs), size=cfg.batch, p=lengths / lengths.sum())
        items = []
        for k in picks:
            clip, a, b = runs[int(k)]
            n = min(size, b - a)
            start = a + int(rng.integers(0, b - a - n + 1))
            if hard and rng.random() < cfg.hard_share:
                clip, start, n = _hard_crop(hard, size, rng)
            items.append((clip, start, n))
        width = max(n for _, _, n in items)
        f = clips[0].x.shape[1]
        x = torch.zeros(cfg.batch, width, f)
        apex = torch.zeros(cfg.batch, width)
        kind = torch.full((cfg.batch, width), IGNORE, dtype=torch.long)
        emotion = torch.full((cfg.batch, width), IGNORE, dtype=torch.long)
        mask = torch.zeros(cfg.batch, width, dtype=torch.bool)
        for row, (clip, start, n) in enumerate(items):
            span = slice(start, start + n)
            x[row, :n] = clip.x[span]
            apex[row, :n] = clip.target.apex[span]
            kind[row, :n] = clip.target.kind[span]
            emotion[row, :n] = clip.target.emotion[span]
            mask[row, :n] = True  # padding at the end: causal, so it never leaks backwards
        yield x, apex, kind, emotion, mask


def _hard_crop(hard, size: int, rng: np.random.Generator) -> tuple[Clip, int, int]:
    """A crop of ``size`` frames (or its valid run) with a random hard negative inside, past
    its first quarter, so the model has context before the mistake."""
    clip, frame = hard[int(rng.integers(len(hard)))]
    # the clip's own runs: with augmentation it is last epoch's copy, not one of this epoch's
    a, b = next((a, b) for a, b in valid_runs(clip.valid, min_length=16) if a <= frame < b)
    n = min(size, b - a)
    lead = int(rng.integers(n // 4, max(n * 3 // 4, n // 4 + 1)))
    start = min(max(frame - lead, a), b - n)
    return clip, start, n


@torch.no_grad()
def mine_hard_negatives(
    model: Spotter, clips: Sequence[Clip], cfg: TrainConfig
) -> list[tuple[Clip, int]]:
    """(clip, frame) where the model fires on a real video's frame with no expression there
    (apex score ≥ ``hard_score`` and an apex target below 0.05)."""
    model.eval()
    found = []
    for clip in clips:
        if clip.family != "real":
            continue
        for start, stop in valid_runs(clip.valid, min_length=16):
            out, _ = model(clip.x[None, start:stop])
            apex = out.apex[0]  # (n,)
            wrong = (apex >= cfg.hard_score) & (clip.target.apex[start:stop] < 0.05)
            found += [(clip, start + int(i)) for i in torch.nonzero(wrong)[:, 0].tolist()]
    return found


def train(
    train_clips: Sequence[Clip],
    val_clips: Sequence[Clip],
    cfg: TrainConfig,
    log=print,
    on_epoch: Callable[[int, Spotter], None] | None = None,
) -> tuple[Spotter, dict[str, Any]]:
    """Train; returns the best-epoch model and a summary (history, best epoch, metrics).

    Sets torch's seed, thread count and deterministic mode for the run and restores the
    thread count and mode afterwards. ``on_epoch(epoch, model)`` is called after each epoch
    (the trainer's ``--checkpoints``: every epoch's weights, to choose among them on more
    validation than one run can afford to run every epoch).
    """
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    torch.use_deterministic_algorithms(True)
    try:
        return _train(train_clips, val_clips, cfg, log, on_epoch)
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)


def _train(
    train_clips: Sequence[Clip],
    val_clips: Sequence[Clip],
    cfg: TrainConfig,
    log,
    on_epoch: Callable[[int, Spotter], None] | None,
) -> tuple[Spotter, dict[str, Any]]:
    rng = np.random.default_rng(cfg.seed)
    n_features = train_clips[0].x.shape[1]
    config = SpotterConfig(
        n_features,
        d_model=cfg.d_model,
        n_layers=cfg.n_layers,
        group_sizes=tuple(cfg.group_sizes),
        node_width=cfg.node_width,
    )
    model = Spotter(config)
    mean, std = feature_stats(train_clips)
    model.set_normalization(mean, std)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.epochs, eta_min=0.1 * cfg.lr)
    history: list[dict[str, Any]] = []
    best: tuple[tuple[float, ...], int, dict] | None = None
    hard: list[tuple[Clip, int]] = []
    augment = Augment(cfg.mirror, tuple(cfg.background_gain))
    partners = plain_partners(train_clips) if augment.active or cfg.paste else {}
    cuts = expression_cuts(train_clips, partners) if cfg.paste else []
    backgrounds = [c for c in train_clips if is_plain_real(c)]
    for epoch in range(1, cfg.epochs + 1):
        t0 = time.perf_counter()
        epoch_clips = list(train_clips)
        if cfg.paste:  # generators of their own: the crops draw what they drew without them
            paste_rng = np.random.default_rng((cfg.seed, epoch, 1))
            epoch_clips += pasted_epoch(backgrounds, cuts, cfg.paste, paste_rng)
        if augment.active:
            augment_rng = np.random.default_rng((cfg.seed, epoch))
            epoch_clips = augment_epoch(epoch_clips, partners, augment, augment_rng)
        model.train()
        losses = []
        for x, apex, kind, emotion, mask in _crops(epoch_clips, cfg, rng, hard):
            out, _ = model(x)
            loss = loss_terms(
                out, apex, kind, emotion, mask, pos_weight=cfg.pos_weight, top_weight=cfg.top_weight
            ).total
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad)
            opt.step()
            losses.append(loss.item())
        sched.step()
        if cfg.hard_share > 0:
            hard = mine_hard_negatives(model, epoch_clips, cfg)
        row: dict[str, Any] = {
            "epoch": epoch,
            "train_loss": float(np.mean(losses)),
            "steps": len(losses),
            "hard_negatives": len(hard),
        }
        if val_clips:
            val = evaluate(model, val_clips)
            row.update({f"val_{k}": v for k, v in val.items() if k != "counts"})
            key = (val["overall_f1"], -val["loss"])
            if cfg.select in ("froc", "auc"):
                curve = froc(model, val_clips)
                row.update(
                    {"val_froc_recall": curve["froc_recall"], "val_recall_at": curve["recall_at"]}
                )
                row["val_auc"] = curve["auc"]
                # recall moves in steps of one validation expression: ties go to the score
                # that ranks the expressions better (engines.train.operating.ranking_auc)
                ranked = (curve["froc_recall"], curve["auc"])
                if cfg.select == "auc":  # the ranking first: recall on 73 expressions at
                    # ≤ 2 false events a minute swung 0 ↔ 0.046 between neighbouring epochs
                    ranked = ranked[::-1]
                key = (*ranked, *key)
        else:
            key = (0.0, -row["train_loss"])
        history.append(row)
        mark = ""
        if best is None or key > best[0]:
            best = (key, epoch, copy.deepcopy(model.state_dict()))
            mark = " *"
        log(_epoch_line(row, time.perf_counter() - t0) + mark)
        if on_epoch is not None:
            on_epoch(epoch, model)
    assert best is not None
    model.load_state_dict(best[2])
    model.eval()
    summary: dict[str, Any] = {"best_epoch": best[1], "history": history}
    if val_clips:
        summary["validation"] = evaluate(model, val_clips)
    return model, summary


def _epoch_line(row: dict[str, Any], seconds: float) -> str:
    line = f"epoch {row['epoch']:3d}  {row['steps']} steps  train loss {row['train_loss']:.5f}"
    line += f"  hard negatives {row.get('hard_negatives', 0)}"
    if "val_loss" in row:
        line += (
            f"  val loss {row['val_loss']:.5f}  F1 micro {row['val_micro_f1']:.3f} "
            f"macro {row['val_macro_f1']:.3f} overall {row['val_overall_f1']:.3f}"
        )
    if "val_froc_recall" in row:
        line += f"  FROC recall {row['val_froc_recall']:.3f}  AUC {row['val_auc']:.3f}"
    return line + f"  ({seconds:.1f} s)"
