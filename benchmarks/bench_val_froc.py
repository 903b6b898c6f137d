"""Validation FROC of several spotter weights on the same recipe clips: how a retrain is
chosen against the weights it would replace, on validation only (never on the suite).

    python -m benchmarks.bench_val_froc --features /root/.cache/mexlive/recipe3 \\
        --val-identities VAL_IDS OLD/spotter.pt engines/weights/spotter.pt

(``VAL_IDS``: the trainer's ``--val-identities``, as the shipped manifest's command gives them.)

Each weights file (its manifest beside it, sha256 checked) is run over the validation
identities' clips of ``--features`` exactly as the trainer chooses its epoch
(``engines.train.operating.froc``: recall of the real validation micro-expressions at 0.5, 1
and 2 false micro events per minute at fixed thresholds, and their mean). Weights whose own
training used one of these identities are refused: their numbers would not be validation.
``--relative-half`` adds a row per weights decoded with half maxima above the score's resting
level (``engines.decoding.DecoderConfig.relative_half``), the decoder the suite's curve
measures beside the live one.
"""

from __future__ import annotations

import argparse
import sys

from engines.errors import BadInputError, MexliveError, report_error


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_val_froc",
        description="Validation FROC of spotter weights on the same recipe clips.",
    )
    parser.add_argument("weights", nargs="+", help="spotter .pt files (manifest beside each)")
    parser.add_argument("--features", required=True, help="recipe folder (train/, validation/)")
    parser.add_argument(
        "--val-identities", required=True, help="comma-separated identities to score on"
    )
    parser.add_argument(
        "--relative-half",
        action="store_true",
        help="also decode with half maxima above the score's resting level (not the live one)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from engines.decoding import DecoderConfig
    from engines.train.data import as_node_input, load_clips, split_by_identity
    from engines.train.operating import FROC_POINTS, froc
    from engines.weights import load_spotter

    val_ids = [v.strip() for v in args.val_identities.split(",") if v.strip()]
    try:
        clips = [as_node_input(c) for c in load_clips(args.features)]
        _, val_clips = split_by_identity(clips, val_ids)
        rows = []
        for path in args.weights:
            model, manifest = load_spotter(path)
            overlap = set(manifest.get("data", {}).get("train_identities", [])) & set(val_ids)
            if overlap:
                names = ", ".join(sorted(overlap))
                raise BadInputError(f"{path}: trained on validation identities: {names}")
            rows.append((path, manifest["sha256"][:12], froc(model, val_clips)))
            if args.relative_half:
                result = froc(model, val_clips, base=DecoderConfig(relative_half=True))
                rows.append((f"{path}, half above the resting level", rows[-1][1], result))
    except MexliveError as exc:
        return report_error(exc)
    points = " | ".join(f"recall @ ≤ {p:g} FA/min" for p in FROC_POINTS)
    print(f"{len(val_clips)} validation clips ({', '.join(val_ids)})\n")
    print(f"| weights | sha256 | {points} | mean (FROC) |")
    print("|---|---|" + "---|" * (len(FROC_POINTS) + 1))
    for path, sha, result in rows:
        at = " | ".join(f"{result['recall_at'][str(p)]:.3f}" for p in FROC_POINTS)
        print(f"| {path} | {sha}… | {at} | {result['froc_recall']:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
