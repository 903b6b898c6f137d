"""Train the spotter on feature files; deterministic; writes weights + manifest.

Usage:
    python -m engines.train.spotter --features /tmp/mexlive_data/trainval \\
        --val-identities tpsmm_source.png --out engines/weights/spotter.pt --epochs 40 --seed 0

Training (ME-TST's video-level regression): random crops of 300–600 frames from the training
clips' valid stretches (a gap resets the live model, so no crop spans one), batches of 8, Adam
with a cosine learning-rate decay, the loss of ``engines.models.spotter.loss`` (0.9·MSE(apex) +
0.1·CE(emotion) + a small micro/macro CE). Features are normalised by the training set's mean
and std, stored in the model (``set_normalization``).

Validation after every epoch on HELD-OUT identities (``--val-identities``: never the test
identities): each validation clip is run whole (per valid stretch, as the live path resets at a
gap), its apex score decoded offline (`decode_offline`, the streaming decoder's rule without
the streaming) and scored with MEGC F1. The epoch with the best overall validation F1 (then the
lowest validation loss) is kept. ``engines/`` cannot import ``stream/``; the exact live decoder
is measured by ``benchmarks/bench_spotting.py``.

Outputs: ``--out`` (state_dict + config, see ``engines.weights``) and ``manifest.json`` beside
it with the sha256, the command line, data seeds, identities, feature-layout hash, training
time and validation metrics. Same data + same arguments → same weights on the same machine.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import platform
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engines.errors import BadInputError, DataError, MexliveError, report_error
from engines.eval.metrics import VideoIntervals, spotting_matches, spotting_report, uar, uf1
from engines.models.spotter import EMOTIONS, IGNORE, Spotter, SpotterConfig, loss_terms
from engines.train.data import (
    Clip,
    feature_stats,
    load_clips,
    names_hash,
    split_by_identity,
    valid_runs,
)
from engines.weights import MANIFEST_NAME, config_dict, save_spotter


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


# ---- offline decoding (validation only) -------------------------------------------------------


@dataclass(frozen=True)
class Decoded:
    onset: int
    apex: int
    offset: int
    kind: str
    emotion: str


def decode_offline(
    apex: np.ndarray,
    emotion_probs: np.ndarray,
    fps: float,
    valid: np.ndarray | None = None,
    min_threshold: float = 0.3,
    mad_k: float = 6.0,
    width_scale: float = 1.70,
    micro_max_s: float = 0.5,
    min_duration_s: float = 0.12,
) -> list[Decoded]:
    """Intervals from a whole clip's apex score (L,) and emotion probabilities (L, 3).

    The streaming rule of ``engines/decoding.py`` without the streaming: threshold =
    max(min_threshold, median + mad_k·MAD) over the clip's valid frames (a whole-clip statistic:
    fine for validation, never for live use); each stretch above it gives its peak; the
    half-maximum span around the peak, widened × width_scale about its centre, is the interval;
    micro when it lasts ≤ micro_max_s. The emotion is the score-weighted mean inside the span.
    """
    score = np.where(np.isfinite(apex), apex, 0.0).astype(np.float64)  # (L,)
    ok = np.ones(len(score), bool) if valid is None else np.asarray(valid, bool)
    score[~ok] = 0.0
    if not ok.any():
        return []
    median = float(np.median(score[ok]))
    mad = float(np.median(np.abs(score[ok] - median)))
    threshold = max(min_threshold, median + mad_k * mad)
    above = score >= threshold
    out: list[Decoded] = []
    i, n = 0, len(score)
    while i < n:
        if not above[i]:
            i += 1
            continue
        j = i
        while j + 1 < n and above[j + 1]:
            j += 1
        peak = i + int(np.argmax(score[i : j + 1]))
        half = 0.5 * score[peak]
        left, right = peak, peak
        while left > 0 and ok[left - 1] and score[left - 1] >= half:
            left -= 1
        while right + 1 < n and ok[right + 1] and score[right + 1] >= half:
            right += 1
        i = max(j, right) + 1  # one event per half-maximum span, like the streaming decoder
        length = width_scale * (right - left + 1)  # frames
        if length / fps < min_duration_s:
            continue
        centre = 0.5 * (left + right)
        onset = round(centre - length / 2 + 0.5)
        offset = round(centre + length / 2 - 0.5)
        weights = score[left : right + 1, None]  # (K, 1)
        mean = (weights * emotion_probs[left : right + 1]).sum(0)  # (3,)
        kind = "micro" if length / fps <= micro_max_s else "macro"
        out.append(Decoded(onset, peak, offset, kind, EMOTIONS[int(np.argmax(mean))]))
    return out


# ---- model runs -------------------------------------------------------------------------------


@torch.no_grad()
def run_clip(model: Spotter, clip: Clip) -> tuple[np.ndarray, np.ndarray]:
    """Apex score (L,) and emotion probabilities (L, 3) of a whole clip, the state reset at
    every gap as the live path does (NaN / zero on invalid rows)."""
    length = clip.length
    apex = np.full(length, np.nan, np.float32)
    probs = np.zeros((length, len(EMOTIONS)), np.float32)
    for start, stop in valid_runs(clip.valid):
        out, _ = model(clip.x[None, start:stop])  # (1, n) heads
        apex[start:stop] = out.apex[0].numpy()
        probs[start:stop] = torch.softmax(out.emotion_logits[0], -1).numpy()
    return apex, probs


def score_intervals(
    per_clip: Sequence[tuple[Clip, list[Decoded]]],
) -> dict[str, Any]:
    """MEGC spotting report + emotion UF1/UAR on the matched micro-expressions."""
    videos, y_true, y_pred = [], [], []
    for clip, decoded in per_clip:
        pred = [(d.onset, d.offset, d.kind) for d in decoded]
        truth = [(t.onset, t.offset, t.kind) for t in clip.truth]
        videos.append(VideoIntervals(pred, truth))
        micro_pred = [d for d in decoded if d.kind == "micro"]
        micro_truth = [t for t in clip.truth if t.kind == "micro"]
        pairs = spotting_matches(
            [(d.onset, d.offset) for d in micro_pred], [(t.onset, t.offset) for t in micro_truth]
        )
        for i, j in pairs:
            if micro_truth[j].emotion in EMOTIONS:
                y_true.append(micro_truth[j].emotion)
                y_pred.append(micro_pred[i].emotion)
    report = spotting_report(videos)
    return {
        "micro_f1": report["micro"]["f1"],
        "macro_f1": report["macro"]["f1"],
        "overall_f1": report["overall"]["f1"],
        "overall_precision": report["overall"]["precision"],
        "overall_recall": report["overall"]["recall"],
        "counts": {k: {c: report[k][c] for c in ("tp", "fp", "fn")} for k in report},
        "micro_emotion_uf1": uf1(y_true, y_pred, EMOTIONS),
        "micro_emotion_uar": uar(y_true, y_pred, EMOTIONS),
        "micro_emotion_n": len(y_true),
    }


@torch.no_grad()
def decode_clips(model: Spotter, clips: Sequence[Clip]) -> list[tuple[Clip, list[Decoded]]]:
    """Each clip through the model and the offline decoder: (clip, decided intervals)."""
    decoded = []
    for clip in clips:
        apex, probs = run_clip(model, clip)
        decoded.append((clip, decode_offline(apex, probs, clip.fps, clip.valid.numpy())))
    return decoded


@torch.no_grad()
def evaluate(model: Spotter, clips: Sequence[Clip]) -> dict[str, Any]:
    """Validation loss (masked, per frame) and offline-decoded spotting scores."""
    model.eval()
    total, frames = 0.0, 0
    for clip in clips:
        for start, stop in valid_runs(clip.valid):
            out, _ = model(clip.x[None, start:stop])
            t = clip.target
            mask = torch.ones(1, stop - start, dtype=torch.bool)
            terms = loss_terms(
                out,
                t.apex[None, start:stop],
                t.kind[None, start:stop],
                t.emotion[None, start:stop],
                mask,
            )
            total += float(terms.total) * (stop - start)
            frames += stop - start
    metrics = score_intervals(decode_clips(model, clips))
    metrics["loss"] = total / max(frames, 1)
    return metrics


# ---- batches ------------------------------------------------------------------------------


def _crops(clips: Sequence[Clip], cfg: TrainConfig, rng: np.random.Generator):
    """One epoch's batches: (x (B, T, F), target apex/kind/emotion (B, T), mask (B, T))."""
    runs = [(c, a, b) for c in clips for a, b in valid_runs(c.valid, min_length=16)]
    if not runs:
        raise DataError("no valid stretch of >= 16 frames in the training clips")
    lengths = np.array([b - a for _, a, b in runs], np.float64)
    mean_crop = 0.5 * (cfg.crop_min + cfg.crop_max)
    n_crops = max(cfg.batch, math.ceil(lengths.sum() / mean_crop))  # each frame ≈ once
    n_batches = math.ceil(n_crops / cfg.batch)
    for _ in range(n_batches):
        size = int(rng.integers(cfg.crop_min, cfg.crop_max + 1))
        picks = rng.choice(len(runs), size=cfg.batch, p=lengths / lengths.sum())
        items = []
        for k in picks:
            clip, a, b = runs[int(k)]
            n = min(size, b - a)
            start = a + int(rng.integers(0, b - a - n + 1))
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


def train(
    train_clips: Sequence[Clip],
    val_clips: Sequence[Clip],
    cfg: TrainConfig,
    log=print,
) -> tuple[Spotter, dict[str, Any]]:
    """Train; returns the best-epoch model and a summary (history, best epoch, metrics).

    Sets torch's seed, thread count and deterministic mode for the run and restores the
    thread count and mode afterwards.
    """
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    torch.use_deterministic_algorithms(True)
    try:
        return _train(train_clips, val_clips, cfg, log)
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)


def _train(
    train_clips: Sequence[Clip], val_clips: Sequence[Clip], cfg: TrainConfig, log
) -> tuple[Spotter, dict[str, Any]]:
    rng = np.random.default_rng(cfg.seed)
    n_features = train_clips[0].x.shape[1]
    model = Spotter(SpotterConfig(n_features, d_model=cfg.d_model, n_layers=cfg.n_layers))
    mean, std = feature_stats(train_clips)
    model.set_normalization(mean, std)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.epochs, eta_min=0.1 * cfg.lr)
    history: list[dict[str, Any]] = []
    best: tuple[tuple[float, float], int, dict] | None = None
    for epoch in range(1, cfg.epochs + 1):
        t0 = time.perf_counter()
        model.train()
        losses = []
        for x, apex, kind, emotion, mask in _crops(train_clips, cfg, rng):
            out, _ = model(x)
            loss = loss_terms(out, apex, kind, emotion, mask).total
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad)
            opt.step()
            losses.append(loss.item())
        sched.step()
        row: dict[str, Any] = {"epoch": epoch, "train_loss": float(np.mean(losses))}
        if val_clips:
            val = evaluate(model, val_clips)
            row.update({f"val_{k}": v for k, v in val.items() if k != "counts"})
            key = (val["overall_f1"], -val["loss"])
        else:
            key = (0.0, -row["train_loss"])
        history.append(row)
        mark = ""
        if best is None or key > best[0]:
            best = (key, epoch, copy.deepcopy(model.state_dict()))
            mark = " *"
        log(_epoch_line(row, time.perf_counter() - t0) + mark)
    assert best is not None
    model.load_state_dict(best[2])
    model.eval()
    summary: dict[str, Any] = {"best_epoch": best[1], "history": history}
    if val_clips:
        summary["validation"] = evaluate(model, val_clips)
    return model, summary


def _epoch_line(row: dict[str, Any], seconds: float) -> str:
    line = f"epoch {row['epoch']:3d}  train loss {row['train_loss']:.5f}"
    if "val_loss" in row:
        line += (
            f"  val loss {row['val_loss']:.5f}  F1 micro {row['val_micro_f1']:.3f} "
            f"macro {row['val_macro_f1']:.3f} overall {row['val_overall_f1']:.3f}"
        )
    return line + f"  ({seconds:.1f} s)"


# ---- CLI --------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m engines.train.spotter",
        description="Train the spotter on a folder of feature files "
        "(python -m stream.datasets.features) "
        "and write its weights plus manifest.json beside them.",
        epilog="Validation identities must be held out from training AND from the test set. "
        "Exit code 2 means bad input.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--features", required=True, help="folder of clip .npz files")
    parser.add_argument(
        "--val-identities",
        default="",
        help="comma-separated identities (photo names) held out for validation / best epoch",
    )
    parser.add_argument("--out", default="engines/weights/spotter.pt", help="weights file")
    parser.add_argument("--epochs", type=int, default=TrainConfig.epochs)
    parser.add_argument("--seed", type=int, default=TrainConfig.seed)
    parser.add_argument("--batch", type=int, default=TrainConfig.batch)
    parser.add_argument("--crop-min", type=int, default=TrainConfig.crop_min, help="frames")
    parser.add_argument("--crop-max", type=int, default=TrainConfig.crop_max, help="frames")
    parser.add_argument("--lr", type=float, default=TrainConfig.lr)
    parser.add_argument("--threads", type=int, default=TrainConfig.threads)
    parser.add_argument(
        "--loso",
        action="store_true",
        help="leave-one-subject-out protocol instead: train/test a model per held-out identity "
        "(engines/train/loso.py); nothing is written but --loso-out",
    )
    parser.add_argument("--loso-out", default=None, help="LOSO metrics as JSON")
    parser.add_argument("--d-model", type=int, default=TrainConfig.d_model, help="model width")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    if args.epochs < 1 or args.batch < 1 or not 1 <= args.crop_min <= args.crop_max:
        message = "epochs and batch must be >= 1 and 1 <= crop-min <= crop-max"
        return report_error(BadInputError(message))
    cfg = TrainConfig(
        epochs=args.epochs,
        seed=args.seed,
        batch=args.batch,
        crop_min=args.crop_min,
        crop_max=args.crop_max,
        lr=args.lr,
        threads=args.threads,
        d_model=args.d_model,
    )
    val_ids = [v.strip() for v in args.val_identities.split(",") if v.strip()]
    t0 = time.perf_counter()
    try:
        clips = load_clips(args.features)
        train_clips, val_clips = split_by_identity(clips, val_ids)
    except MexliveError as exc:
        return report_error(exc)
    if args.loso:
        if val_ids:
            message = "--loso holds out each subject in turn; drop --val-identities"
            return report_error(BadInputError(message))
        return _run_loso(clips, cfg, args.loso_out)
    names = list(clips[0].names)
    print(
        f"{len(train_clips)} training clips ({_ids(train_clips)}), {len(val_clips)} validation "
        f"clips ({_ids(val_clips) or 'none'}), {len(names)} features",
        flush=True,
    )
    try:  # clips too short to crop are only found here
        model, summary = train(train_clips, val_clips, cfg, log=lambda s: print(s, flush=True))
    except MexliveError as exc:
        return report_error(exc)
    seconds = time.perf_counter() - t0
    out = Path(args.out)
    sha = save_spotter(model, out, names)
    manifest = {
        "file": out.name,
        "sha256": sha,
        "size_bytes": out.stat().st_size,
        "command": "python -m engines.train.spotter " + shlex.join(argv),
        "data": {
            "features": str(Path(args.features)),
            "train_identities": sorted({c.identity for c in train_clips}),
            "val_identities": sorted({c.identity for c in val_clips}),
            "train_clip_seeds": sorted(c.seed for c in train_clips),
            "val_clip_seeds": sorted(c.seed for c in val_clips),
            "data_seeds": sorted({c.seed // 1000 for c in clips if c.seed >= 0}),
            "train_frames": sum(c.length for c in train_clips),
            "val_frames": sum(c.length for c in val_clips),
            "fps": sorted({c.fps for c in clips}),
        },
        "n_features": len(names),
        "feature_names_sha256": names_hash(names),
        "model": config_dict(model.config),
        "train": {**cfg.__dict__, "best_epoch": summary["best_epoch"]},
        "training_time_s": round(seconds, 1),
        "validation": summary.get("validation"),
        "history": summary["history"],
        "environment": {
            "torch": torch.__version__,
            "python": platform.python_version(),
            "machine": platform.machine(),
        },
    }
    manifest_path = out.parent / MANIFEST_NAME
    manifest_path.write_text(json.dumps(manifest, indent=2, default=_json_default) + "\n")
    val = summary.get("validation")
    print(f"best epoch {summary['best_epoch']}; wrote {out} ({sha[:12]}) and {manifest_path}")
    if val:
        print(
            f"validation: F1 micro {val['micro_f1']:.3f} macro {val['macro_f1']:.3f} overall "
            f"{val['overall_f1']:.3f}; loss {val['loss']:.5f}; training took {seconds:.0f} s"
        )
    return 0


def _run_loso(clips: Sequence[Clip], cfg: TrainConfig, out: str | None) -> int:
    from engines.train.loso import loso, table, write_json

    try:
        result = loso(clips, cfg, log=lambda s: print(s, flush=True))
    except MexliveError as exc:
        return report_error(exc)
    print(table(result))
    if out:
        write_json(result, out)
    return 0


def _ids(clips: Sequence[Clip]) -> str:
    return ", ".join(sorted({c.identity for c in clips}))


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value)}")


if __name__ == "__main__":
    sys.exit(main())
