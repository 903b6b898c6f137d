"""Train the spotter on feature files; deterministic; writes weights + manifest.

Usage:
    python -m engines.train --features /tmp/mexlive_data/trainval \\
        --val-identities tpsmm_source.png --out engines/weights/spotter.pt --epochs 40 --seed 0
    python -m engines.train --features DIR --loso [--epochs N] [--loso-out loso.json]

``python -m engines.train.spotter`` is the same command. The training loop is
``engines/train/loop.py``, the per-epoch validation on HELD-OUT identities (``--val-identities``:
never the test identities) ``engines/train/validation.py`` (the live decoder, MEGC F1), the
leave-one-subject-out protocol ``engines/train/loso.py``.

Outputs: ``--out`` (state_dict + config, see ``engines.weights``) and ``manifest.json`` beside
it with the sha256, the command line, data seeds, identities, feature-layout hash, training
time and validation metrics. Same data + same arguments → same weights on the same machine.
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engines.errors import BadInputError, DataError, MexliveError, report_error
from engines.inputs import MOTION_INPUT
from engines.node_inputs import GROUP_SIZES, NODE_INPUT, NODE_WIDTH
from engines.train.composition import check_held_out, composition
from engines.train.data import (
    Clip,
    as_motion_input,
    as_node_input,
    load_clips,
    split_by_identity,
)
from engines.train.loop import TrainConfig, train
from engines.train.loso import loso, table, write_json
from engines.weights import MANIFEST_NAME, config_dict, names_sha256, save_spotter

# the node spotter's encoder, and its epoch chosen as it runs: at fixed thresholds
NODE_MODEL = {"group_sizes": GROUP_SIZES, "node_width": NODE_WIDTH, "select": "froc"}


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
    parser.add_argument(
        "--hard-share",
        type=float,
        default=TrainConfig.hard_share,
        help="share of each epoch's crops centred on hard negatives: frames of real video "
        "where the current model fires with nothing there (0: none)",
    )
    parser.add_argument(
        "--passes",
        type=int,
        default=TrainConfig.passes,
        help="crops per epoch, in passes over the training frames (validation runs once an "
        "epoch): more optimizer steps without validating more often",
    )
    parser.add_argument(
        "--mirror",
        action="store_true",
        help="node spotter: mirror half of the training clips each epoch (left and right "
        "nodes swapped; engines/train/augment.py)",
    )
    parser.add_argument(
        "--background-gain",
        default="1,1",
        metavar="LOW,HIGH",
        help="node spotter: scale the plain part of each real training clip by a gain drawn "
        "from [LOW, HIGH] each epoch, an injected expression kept as it is (1,1: off)",
    )
    parser.add_argument(
        "--select",
        choices=("froc", "auc"),
        default="froc",
        help="node spotter: what picks the epoch on validation: recall at 0.5/1/2 false "
        "micro events per minute (then the score's AUC), or the AUC first (then recall)",
    )
    parser.add_argument(
        "--paste",
        type=int,
        default=0,
        metavar="N",
        help="node spotter: each epoch, N copies of every plain real training video with "
        "injected expressions of OTHER videos pasted onto their node flow (0: none)",
    )
    parser.add_argument(
        "--input",
        choices=("nodes", "motion", "raw"),
        default="nodes",
        help="what the model reads: landmark-node motion against the person's calm noise "
        "plus blink, speech and head speed through a spatial encoder (engines/node_inputs.py); "
        "or the region rows normalised by the person's running noise plus the classic's "
        "score (engines/inputs.py); or the raw region rows",
    )
    parser.add_argument(
        "--pos-weight",
        type=float,
        default=TrainConfig.pos_weight,
        help="weight of the apex error on frames inside an expression (they are few)",
    )
    parser.add_argument(
        "--top-weight",
        type=float,
        default=TrainConfig.top_weight,
        help="weight of a loss on each crop's highest scores far from any expression, the "
        "false alarms a fixed threshold meets first (engines.models.spotter."
        "top_negative_term; 0: off)",
    )
    parser.add_argument(
        "--target-fa",
        type=float,
        default=0.5,
        help="node spotter: false micro events per minute of validation video at which its "
        "fixed threshold is chosen (engines/train/operating.py)",
    )
    parser.add_argument(
        "--checkpoints",
        metavar="DIR",
        help="also write every epoch's weights as DIR/epoch_NN/spotter.pt with a manifest, "
        "to compare epochs later on more validation (python -m benchmarks.bench_val_froc)",
    )
    parser.add_argument(
        "--held-out",
        default="",
        help="comma-separated names (videos, photos) kept out of this training for the "
        "cross-domain suite; recorded in the manifest and refused if any clip uses one",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    if min(args.epochs, args.batch, args.passes) < 1 or not 1 <= args.crop_min <= args.crop_max:
        message = "epochs, batch and passes must be >= 1 and 1 <= crop-min <= crop-max"
        return report_error(BadInputError(message))
    try:
        gain = _gain_range(args.background_gain)
    except ValueError as exc:
        return report_error(BadInputError(str(exc)))
    if (args.mirror or gain != (1.0, 1.0) or args.paste) and args.input != "nodes":
        message = "--mirror, --background-gain and --paste need --input nodes"
        return report_error(BadInputError(message))
    if args.paste < 0 or args.top_weight < 0:
        message = f"--paste {args.paste}, --top-weight {args.top_weight}: must be >= 0"
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
        hard_share=args.hard_share,
        pos_weight=args.pos_weight,
        passes=args.passes,
        mirror=args.mirror,
        background_gain=gain,
        paste=args.paste,
        top_weight=args.top_weight,
        **({**NODE_MODEL, "select": args.select} if args.input == "nodes" else {}),
    )
    val_ids = [v.strip() for v in args.val_identities.split(",") if v.strip()]
    t0 = time.perf_counter()
    held_out = [v.strip() for v in args.held_out.split(",") if v.strip()]
    try:
        clips = load_clips(args.features)
        if not any(bool(c.valid.any()) for c in clips):  # all gaps: no face was ever found
            raise DataError(
                f"{args.features}: none of its {len(clips)} clip(s) has a valid feature row "
                "(no face found when they were made?): nothing to train on"
            )
        check_held_out(clips, held_out)
        if args.input == "motion":
            clips = [as_motion_input(c) for c in clips]
        elif args.input == "nodes":
            clips = [as_node_input(c) for c in clips]
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
    # what every weights file of this run carries: the shipped one and each --checkpoints one
    identity = {
        "command": "python -m engines.train.spotter " + shlex.join(argv),
        "input": {"nodes": NODE_INPUT, "motion": MOTION_INPUT}.get(args.input, "raw"),
        "data": {
            "held_out": held_out,
            "train_identities": sorted({c.identity for c in train_clips}),
            "val_identities": sorted({c.identity for c in val_clips}),
        },
        "n_features": len(names),
        "feature_names_sha256": names_sha256(names),
    }
    on_epoch = None
    if args.checkpoints:

        def on_epoch(epoch: int, model) -> None:
            _write_checkpoint(Path(args.checkpoints), epoch, model, names, identity)

    try:  # clips too short to crop are only found here
        model, summary = train(
            train_clips, val_clips, cfg, log=lambda s: print(s, flush=True), on_epoch=on_epoch
        )
    except MexliveError as exc:
        return report_error(exc)
    operating = None
    if args.input == "nodes" and val_clips:
        from engines.train.operating import choose_operating_point

        operating = choose_operating_point(model, val_clips, args.target_fa)
        print(
            f"operating point: threshold {operating['threshold']:.3f}, "
            f"{operating['fa_per_min']:.2f} false micro/min and recall {operating['recall']} "
            f"on {operating['validation_minutes']:.2f} min of validation video",
            flush=True,
        )
    seconds = time.perf_counter() - t0
    out = Path(args.out)
    sha = save_spotter(model, out, names)
    manifest = {
        "file": out.name,
        "sha256": sha,
        "size_bytes": out.stat().st_size,
        "command": identity["command"],
        "input": identity["input"],
        "data": {
            "features": str(Path(args.features)),
            "composition": composition(train_clips, val_clips),
            **identity["data"],
            "train_clip_seeds": sorted(c.seed for c in train_clips),
            "val_clip_seeds": sorted(c.seed for c in val_clips),
            "data_seeds": sorted({c.seed // 1000 for c in clips if c.seed >= 0}),
            "train_frames": sum(c.length for c in train_clips),
            "val_frames": sum(c.length for c in val_clips),
            "fps": sorted({c.fps for c in clips}),
        },
        **({"operating_point": operating} if operating else {}),
        "n_features": identity["n_features"],
        "feature_names_sha256": identity["feature_names_sha256"],
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


def _write_checkpoint(
    folder: Path, epoch: int, model, names: list[str], identity: dict[str, Any]
) -> None:
    """One epoch's weights and a manifest that loads them (no operating point: chosen only
    for the weights shipped)."""
    out = folder / f"epoch_{epoch:02d}" / "spotter.pt"
    sha = save_spotter(model, out, names)
    manifest = {"file": out.name, "sha256": sha, "size_bytes": out.stat().st_size}
    manifest |= {"epoch": epoch, **identity, "model": config_dict(model.config)}
    text = json.dumps(manifest, indent=2, default=_json_default) + "\n"
    (out.parent / MANIFEST_NAME).write_text(text)


def _run_loso(clips: Sequence[Clip], cfg: TrainConfig, out: str | None) -> int:
    try:
        result = loso(clips, cfg, log=lambda s: print(s, flush=True))
    except MexliveError as exc:
        return report_error(exc)
    print(table(result))
    if out:
        write_json(result, out)
    return 0


def _gain_range(text: str) -> tuple[float, float]:
    """LOW,HIGH → (low, high), 0 < low <= high; ValueError with the flag's name otherwise."""
    try:
        low, high = (float(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"--background-gain {text!r}: expected LOW,HIGH (e.g. 0.7,1.3)") from None
    if not 0.0 < low <= high:
        raise ValueError(f"--background-gain {text!r}: need 0 < LOW <= HIGH")
    return low, high


def _ids(clips: Sequence[Clip]) -> str:
    return ", ".join(sorted({c.identity for c in clips}))


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value)}")


if __name__ == "__main__":
    sys.exit(main())
