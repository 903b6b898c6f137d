"""Train the recognizer on flow-stack files, progressively; deterministic; weights + manifest.

Usage:
    python -m engines.train.recognizer --data /tmp/rec_data/train /tmp/rec_data/val \\
        --val-identities tpsmm_source.png --test-data /tmp/rec_data/test \\
        --out engines/weights/recognizer.pt --seed 0

Input: folders of ``clip_XXXX.npz`` from ``python -m stream.datasets.stacks`` (flow (N, 2, T,
S, S), ROI mask, emotion, AUs, event and variant per stack, identity and seed per clip).

Progressive training (MPFNet): stage 1 trains both encoders with their own heads, the general
one on the emotion and the prior one on the emotion plus its AUs (the AU prior, BCE weighted
``au_weight``); stage 2 freezes them (BatchNorm statistics included) and trains the two fusion
variants, -P and -C, on the emotion. Each epoch draws one stack per expression (the true or a
jittered interval, at random) and mirrors half of them. The best epoch of each stage is chosen
on HELD-OUT identities (``--val-identities``) by UF1 over all their stacks (then the lower
loss); the live variant is the fusion with the better validation UF1 (P on a tie).

``--test-data`` (identities and seeds used by neither training nor validation) is only scored,
after training, for the manifest and the README table: UF1 / UAR of every head.

Outputs: ``--out`` (see ``engines.weights.save_recognizer``) and ``recognizer.json`` beside it:
sha256, the command line, data folders, identities, clip seeds, configs, metrics, history.
Same data + same arguments → same weights on the same machine.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import shlex
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from engines.errors import BadInputError, DataError, MexliveError, report_error
from engines.eval.metrics import uar, uf1
from engines.labels import EMOTIONS
from engines.models.recognizer import (
    Recognizer,
    RecognizerConfig,
    mirror_stack,
    n_parameters,
)
from engines.train.stacks import StackSet, load_stacks
from engines.weights import RECOGNIZER_MANIFEST, save_recognizer

HEADS = ("general", "prior", "parallel", "hierarchical")


@dataclass(frozen=True)
class RecognizerTrainConfig:
    encoder_epochs: int = 12
    fusion_epochs: int = 6
    seed: int = 0
    batch: int = 32
    lr: float = 3e-3
    weight_decay: float = 1e-4
    au_weight: float = 0.5
    threads: int = 1  # this shared 2-core CPU: a second thread mostly waits


# ---- evaluation ---------------------------------------------------------------------------


@torch.no_grad()
def predict(model: Recognizer, stacks: StackSet, batch: int = 64) -> dict[str, np.ndarray]:
    """Probabilities (N, E) of every head, in eval mode."""
    model.eval()
    out: dict[str, list[np.ndarray]] = {head: [] for head in HEADS}
    for start in range(0, len(stacks), batch):
        rows = slice(start, start + batch)
        result = model(stacks.flow[rows].float(), stacks.mask[rows].float())
        for head in HEADS:
            out[head].append(torch.softmax(getattr(result, head), -1).numpy())
    return {head: np.concatenate(parts) for head, parts in out.items()}


def scores(stacks: StackSet, probs: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """UF1 / UAR of every head over all stacks and over the true intervals only."""
    truth = [EMOTIONS[i] for i in stacks.emotion.tolist()]
    exact = (stacks.variant == 0).numpy()
    report: dict[str, dict[str, float]] = {}
    for head, p in probs.items():
        pred = [EMOTIONS[i] for i in p.argmax(1)]
        pred_exact = [e for e, keep in zip(pred, exact, strict=True) if keep]
        truth_exact = [e for e, keep in zip(truth, exact, strict=True) if keep]
        report[head] = {
            "uf1": uf1(truth, pred, EMOTIONS),
            "uar": uar(truth, pred, EMOTIONS),
            "n": len(truth),
            "uf1_true_interval": uf1(truth_exact, pred_exact, EMOTIONS),
            "uar_true_interval": uar(truth_exact, pred_exact, EMOTIONS),
            "n_true_interval": len(truth_exact),
        }
    return report


# ---- training -----------------------------------------------------------------------------


def _epoch_rows(stacks: StackSet, rng: np.random.Generator) -> np.ndarray:
    """One stack per expression (true or jittered interval, at random), shuffled."""
    groups = stacks.group.numpy()
    order = rng.permutation(len(groups))
    _, first = np.unique(groups[order], return_index=True)  # a random member of each group
    return rng.permutation(order[first])


def _batch(stacks: StackSet, rows: np.ndarray, rng: np.random.Generator):
    flow, mask = stacks.flow[rows].float(), stacks.mask[rows].float()
    flip = torch.from_numpy(rng.random(len(rows)) < 0.5)
    mirrored_flow, mirrored_mask = mirror_stack(flow, mask)
    flow = torch.where(flip[:, None, None, None, None], mirrored_flow, flow)
    mask = torch.where(flip[:, None, None], mirrored_mask, mask)
    return flow, mask, stacks.emotion[rows], stacks.aus[rows]  # AUs are symmetric here


def _stage(
    model: Recognizer,
    stage: int,
    train_set: StackSet,
    val_set: StackSet,
    cfg: RecognizerTrainConfig,
    rng: np.random.Generator,
    log,
) -> dict[str, Any]:
    """Stage 1 (encoders) or 2 (fusions); keeps the best epoch's weights in ``model``."""
    epochs = cfg.encoder_epochs if stage == 1 else cfg.fusion_epochs
    trained = model.encoders() if stage == 1 else model.fusions()
    heads = ("general", "prior") if stage == 1 else ("parallel", "hierarchical")
    for module in model.encoders():
        module.requires_grad_(stage == 1)
    params = [p for module in trained for p in module.parameters()]
    opt = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs, eta_min=0.1 * cfg.lr)
    history, best = [], None
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        model.train()
        if stage == 2:
            for module in model.encoders():
                module.eval()  # frozen: BatchNorm statistics stay those of stage 1
        rows = _epoch_rows(train_set, rng)
        losses = []
        bar = tqdm(
            range(0, len(rows), cfg.batch),
            desc=f"stage {stage} epoch {epoch}",
            leave=False,
            file=sys.stderr,
            unit="batch",
        )
        for start in bar:
            flow, mask, emotion, aus = _batch(train_set, rows[start : start + cfg.batch], rng)
            out = model(flow, mask)
            loss = sum(F.cross_entropy(getattr(out, head), emotion) for head in heads)
            if stage == 1:
                loss = loss + cfg.au_weight * F.binary_cross_entropy_with_logits(out.aus, aus)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        sched.step()
        val = scores(val_set, predict(model, val_set))
        row = {
            "stage": stage,
            "epoch": epoch,
            "train_loss": float(np.mean(losses)),
            **{f"val_{h}_uf1": val[h]["uf1"] for h in heads},
            **{f"val_{h}_uar": val[h]["uar"] for h in heads},
        }
        history.append(row)
        key = (float(np.mean([val[h]["uf1"] for h in heads])), -row["train_loss"])
        mark = ""
        if best is None or key > best[0]:
            best, mark = (key, epoch, copy.deepcopy(model.state_dict())), " *"
        log(
            f"stage {stage} epoch {epoch:2d}  loss {row['train_loss']:.4f}  "
            + "  ".join(f"{h} UF1 {val[h]['uf1']:.3f}" for h in heads)
            + f"  ({time.perf_counter() - t0:.1f} s){mark}"
        )
    assert best is not None
    model.load_state_dict(best[2])
    return {"best_epoch": best[1], "history": history}


def config_for(stacks: StackSet, **sizes: Any) -> RecognizerConfig:
    """``RecognizerConfig`` at the data's T, S and AU count (``sizes``: e.g. ``widths``)."""
    _, _, steps, size, _ = stacks.flow.shape  # (N, 2, T, S, S)
    return RecognizerConfig(steps=steps, size=size, n_aus=len(stacks.au_names), **sizes)


def train(
    train_set: StackSet,
    val_set: StackSet,
    cfg: RecognizerTrainConfig,
    log=print,
    model_config: RecognizerConfig | None = None,
) -> tuple[Recognizer, dict[str, Any]]:
    """Both stages; returns the model (eval mode, live variant chosen) and a summary.

    ``model_config`` defaults to ``RecognizerConfig`` at the data's T, S and AU count. Sets
    torch's seed, threads and deterministic mode for the run and restores them after.
    """
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    torch.use_deterministic_algorithms(True)
    try:
        rng = np.random.default_rng(cfg.seed)
        model = Recognizer(model_config or config_for(train_set))
        stage1 = _stage(model, 1, train_set, val_set, cfg, rng, log)
        stage2 = _stage(model, 2, train_set, val_set, cfg, rng, log)
        val = scores(val_set, predict(model, val_set))
        p, c = val["parallel"]["uf1"], val["hierarchical"]["uf1"]
        model.config.live_variant = "P" if p >= c else "C"
        model.eval()
        return model, {"stage1": stage1, "stage2": stage2, "validation": val}
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)


# ---- CLI ----------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    d = RecognizerTrainConfig()
    parser = argparse.ArgumentParser(
        prog="python -m engines.train.recognizer",
        description="Train the MPFNet-style recognizer on flow-stack folders "
        "(python -m stream.datasets.stacks) and write its weights plus recognizer.json.",
        epilog="Validation identities must be held out from training AND from the test set. "
        "Exit code 2 means bad input.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--data", nargs="+", required=True, help="folders of stack files")
    parser.add_argument(
        "--val-identities", required=True, help="comma-separated identities held out for validation"
    )
    parser.add_argument("--test-data", nargs="*", default=[], help="folders scored at the end")
    parser.add_argument("--out", default="engines/weights/recognizer.pt", help="weights file")
    parser.add_argument("--encoder-epochs", type=int, default=d.encoder_epochs)
    parser.add_argument("--fusion-epochs", type=int, default=d.fusion_epochs)
    parser.add_argument("--seed", type=int, default=d.seed)
    parser.add_argument("--batch", type=int, default=d.batch)
    parser.add_argument("--lr", type=float, default=d.lr)
    parser.add_argument("--threads", type=int, default=d.threads)
    parser.add_argument(
        "--widths",
        default=",".join(str(w) for w in RecognizerConfig.widths),
        help="channel widths of the three encoder stages (another architecture: e.g. 8,16,24)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    if min(args.encoder_epochs, args.fusion_epochs, args.batch, args.threads) < 1:
        return report_error(BadInputError("epochs, batch and threads must be >= 1"))
    cfg = RecognizerTrainConfig(
        encoder_epochs=args.encoder_epochs,
        fusion_epochs=args.fusion_epochs,
        seed=args.seed,
        batch=args.batch,
        lr=args.lr,
        threads=args.threads,
    )
    try:
        widths = tuple(int(w) for w in args.widths.split(","))
    except ValueError:
        widths = ()
    if len(widths) != 3 or min(widths) < 1:
        message = f"--widths needs three positive integers, got {args.widths!r}"
        return report_error(BadInputError(message))
    val_ids = {v.strip() for v in args.val_identities.split(",") if v.strip()}
    t0 = time.perf_counter()
    try:
        train_set = load_stacks(args.data, exclude=val_ids)
        val_set = load_stacks(args.data, identities=val_ids)
        test_set = load_stacks(args.test_data) if args.test_data else None
        for name, other in (("validation", val_set), ("test", test_set)):
            if other is not None and other.flow.shape[1:] != train_set.flow.shape[1:]:
                raise DataError(
                    f"{name} stacks are {tuple(other.flow.shape[1:])}, training "
                    f"stacks {tuple(train_set.flow.shape[1:])}"
                )
    except MexliveError as exc:
        return report_error(exc)
    print(
        f"{len(train_set)} training stacks ({', '.join(sorted(set(train_set.identities)))}), "
        f"{len(val_set)} validation stacks ({', '.join(sorted(val_ids))})",
        flush=True,
    )
    model_config = config_for(train_set, widths=widths)
    model, summary = train(
        train_set,
        val_set,
        cfg,
        log=lambda s: tqdm.write(s, file=sys.stdout),
        model_config=model_config,
    )
    seconds = time.perf_counter() - t0
    out = Path(args.out)
    sha = save_recognizer(model, out)
    test = scores(test_set, predict(model, test_set)) if test_set is not None else None
    manifest = {
        "file": out.name,
        "sha256": sha,
        "size_bytes": out.stat().st_size,
        "command": "python -m engines.train.recognizer " + shlex.join(argv),
        "data": {
            "folders": [str(Path(f)) for f in args.data],
            "test_folders": [str(Path(f)) for f in args.test_data],
            **{
                f"{name}_identities": sorted(set(s.identities))
                for name, s in (("train", train_set), ("val", val_set), ("test", test_set))
                if s is not None
            },
            **{
                f"{name}_clip_seeds": sorted(s.seeds)
                for name, s in (("train", train_set), ("val", val_set), ("test", test_set))
                if s is not None
            },
            "data_seeds": sorted(
                {
                    seed // 1000
                    for s in (train_set, val_set, test_set)
                    if s is not None
                    for seed in s.seeds
                }
            ),
            "stacks": {
                "train": len(train_set),
                "val": len(val_set),
                "test": len(test_set) if test_set is not None else 0,
            },
        },
        "model": {**asdict(model.config), "parameters": n_parameters(model)},
        "train": asdict(cfg),
        "best_epochs": {
            "stage1": summary["stage1"]["best_epoch"],
            "stage2": summary["stage2"]["best_epoch"],
        },
        "live_variant": model.config.live_variant,
        "training_time_s": round(seconds, 1),
        "validation": summary["validation"],
        "test": test,
        "history": summary["stage1"]["history"] + summary["stage2"]["history"],
        "environment": {
            "torch": torch.__version__,
            "python": platform.python_version(),
            "machine": platform.machine(),
        },
    }
    manifest_path = out.parent / RECOGNIZER_MANIFEST
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    print(
        f"wrote {out} ({sha[:12]}, {out.stat().st_size} bytes) and {manifest_path}; live "
        f"variant {model.config.live_variant}; training took {seconds:.0f} s"
    )
    for name, report in (("validation", summary["validation"]), ("test", test)):
        if report:
            print(
                f"{name}: "
                + "  ".join(
                    f"{h} UF1 {report[h]['uf1']:.3f} UAR {report[h]['uar']:.3f}" for h in HEADS
                )
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
