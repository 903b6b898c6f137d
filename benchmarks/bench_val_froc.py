"""Validation FROC of several spotter weights on the same recipe clips: how a retrain is
chosen against the weights it would replace, on validation only (never on the suite).

    python -m benchmarks.bench_val_froc --features /root/.cache/mexlive/recipe3 \\
        --val-identities VAL_IDS OLD/spotter.pt engines/weights/spotter.pt
    python -m benchmarks.bench_val_froc --features VALPLUS --val-identities ... A.pt B.pt
        # on more validation seeds (benchmarks/val_seeds.py)

(``VAL_IDS``: the trainer's ``--val-identities``, as the shipped manifest's command gives them.)

Each weights file (its manifest beside it, sha256 checked) is run over the validation
identities' clips of ``--features`` exactly as the trainer chooses its epoch
(``engines.train.operating.froc``: recall of the real validation micro-expressions at 0.5, 1
and 2 false micro events per minute at fixed thresholds, and their mean). Weights whose own
training used one of these identities are refused: their numbers would not be validation.
``--relative-half`` adds a row per weights decoded with half maxima above the score's resting
level (``engines.decoding.DecoderConfig.relative_half``), the decoder the suite's curve
measures beside the live one; ``--peaks 0.25,0.25:0.05`` a row per local-maximum decoder
(``engines.peaks``: apexes the highest within ± S seconds, P above their base).

Clips made from one video at many seeds share its background frame for frame, so a false
alarm on the video's own motion repeats in every seed: the last columns count false events
once per distinct moment of each video (``engines.train.operating.moment_froc``) and give
recall at 0, 1 and 2 such moments, with the minutes of distinct video they are counted on.
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
    parser.add_argument(
        "--peaks",
        default="",
        metavar="S[:P],...",
        help="also decode with local maxima, each the highest within +-S seconds and P above "
        "its base (engines.peaks), one row per setting, e.g. 0.25,0.25:0.05",
    )
    return parser


def _peak_settings(text: str) -> list[tuple[float, float]]:
    """``S[:P],...`` as (peak_s, prominence) pairs; a malformed setting is bad input."""
    settings = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        try:
            peak_s, _, prominence = part.partition(":")
            settings.append((float(peak_s), float(prominence or 0.0)))
        except ValueError:
            raise BadInputError(f"--peaks: {part!r} is not S or S:P (seconds, score)") from None
        if settings[-1][0] <= 0 or settings[-1][1] < 0:
            raise BadInputError(f"--peaks: {part!r}: S must be > 0 and P >= 0")
    return settings


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from engines.decoding import DecoderConfig
    from engines.train.data import as_node_input, load_clips, validation_clips
    from engines.train.operating import (
        FROC_POINTS,
        MOMENT_POINTS,
        background_minutes,
        froc_of,
        moment_froc,
        real_traces,
    )
    from engines.weights import load_spotter

    val_ids = [v.strip() for v in args.val_identities.split(",") if v.strip()]
    try:
        clips = [as_node_input(c) for c in load_clips(args.features)]
        # a folder of validation clips alone is fine (benchmarks.val_seeds): nothing trains here
        val_clips = validation_clips(clips, val_ids)
        peaks = _peak_settings(args.peaks)
        rows = []
        for path in args.weights:
            model, manifest = load_spotter(path)
            overlap = set(manifest.get("data", {}).get("train_identities", [])) & set(val_ids)
            if overlap:
                names = ", ".join(sorted(overlap))
                raise BadInputError(f"{path}: trained on validation identities: {names}")
            sha = manifest["sha256"][:12]
            traces, minutes = real_traces(model, val_clips)  # the model runs once per weights
            rows.append((path, sha, froc_of(traces, minutes) | moment_froc(traces)))
            if args.relative_half:
                result = froc_of(traces, minutes, base=DecoderConfig(relative_half=True))
                rows.append((f"{path}, half above the resting level", sha, result))
            for peak_s, prominence in peaks:
                config = DecoderConfig(peak_s=peak_s, prominence=prominence)
                name = f"{path}, peaks ± {peak_s:g} s, prominence {prominence:g}"
                rows.append((name, sha, froc_of(traces, minutes, base=config)))
    except MexliveError as exc:
        return report_error(exc)
    points = " | ".join(f"recall @ ≤ {p:g} FA/min" for p in FROC_POINTS)
    moments = " / ".join(str(k) for k in MOMENT_POINTS)
    distinct = background_minutes(val_clips)
    print(
        f"{len(val_clips)} validation clips ({', '.join(val_ids)}); {distinct:.2f} min of "
        "distinct video under them\n"
    )
    print(f"| weights | sha256 | {points} | mean (FROC) | score AUC | recall @ {moments} moments |")
    print("|---|---|" + "---|" * (len(FROC_POINTS) + 3))
    for path, sha, result in rows:
        at = " | ".join(f"{result['recall_at'][str(p)]:.3f}" for p in FROC_POINTS)
        by_moment = " / ".join(f"{result.get(str(k), float('nan')):.3f}" for k in MOMENT_POINTS)
        print(
            f"| {path} | {sha}… | {at} | {result['froc_recall']:.3f} | {result['auc']:.3f} | "
            f"{by_moment} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
