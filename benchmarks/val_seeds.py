"""More validation expressions: the recipe's validation videos injected at more seeds.

    python -m benchmarks.val_seeds OUT --recipe ~/.cache/mexlive/recipe3 --seeds 300-323
    python -m benchmarks.bench_val_froc --features OUT --val-identities lp_d11.mp4,... A.pt B.pt

Recall at ≤ 1 false micro event per minute on the recipe's 73 validation micro-expressions
moves in steps of 1.4 % and swung between 0 and 6 % from one epoch to the next, so it cannot
tell two spotters apart. This makes ``OUT/extra/``: the validation videos of the recipe
(``VAL_VIDEOS`` and the corpus clips the training command validates on,
``VAL_CORPUS``) injected exactly as the recipe injects them (``make_real_set``, the same
amplitudes and macro share) at other seeds; and ``OUT/recipe/``: links to the recipe's own
validation files of those videos, plain ones included. Every file is validation only: none of
these videos is trained on (the training command's ``--val-identities`` name them).
A finished set is stamped ``.done`` and not made again.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engines.errors import BadInputError, MexliveError, report_error

# the corpus `train` clips the shipped training command validates on (docs/models.md)
VAL_CORPUS = ("pcavs_00015.mp4", "iplap_129.mp4", "edtalk_mouth_source.mp4")


def parse_seeds(text: str) -> list[int]:
    """FIRST-LAST ("300-323") or "300,301" → seeds; ValueError with the flag's name otherwise."""
    try:
        if "-" in text:
            low, high = (int(v) for v in text.split("-"))
            seeds = list(range(low, high + 1))
        else:
            seeds = [int(v) for v in text.split(",")]
    except ValueError:
        raise ValueError(f"--seeds {text!r}: expected FIRST-LAST or a comma list") from None
    if not seeds or min(seeds) < 300:  # 100-111 train, 200-201 validation already
        raise ValueError(f"--seeds {text!r}: need seeds >= 300 (the recipe uses 100-111, 200-201)")
    return seeds


def link_recipe_files(recipe: Path, out: Path, identities: list[str]) -> int:
    """Links in ``out`` to the recipe's feature files of ``identities``; how many."""
    import numpy as np

    out.mkdir(parents=True, exist_ok=True)
    count = 0
    for path in sorted(recipe.rglob("*.npz")):
        with np.load(path) as data:
            identity = str(data["identity"]) if "identity" in data.files else path.stem
        if identity in identities:
            link = out / f"{path.parent.name}__{path.name}"
            if not link.exists():
                link.symlink_to(path.resolve())
            count += 1
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.val_seeds", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("out", type=Path)
    parser.add_argument("--recipe", type=Path, required=True, help="the recipe's OUT_DIR")
    parser.add_argument("--seeds", default="300-323", help="FIRST-LAST or a comma list")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    from stream.datasets.corpus import CORPUS
    from stream.datasets.featurize import fixtures_dir
    from stream.datasets.real import make_real_set
    from stream.datasets.recipe import MACRO_FRACTION, REAL_AMPLITUDE_PX, VAL_VIDEOS

    try:
        seeds = parse_seeds(args.seeds)
        if not (args.recipe / "validation").is_dir():
            raise BadInputError(f"{args.recipe}: not a recipe folder (no validation/)")
        videos = [*VAL_VIDEOS, *(str(fixtures_dir() / CORPUS / name) for name in VAL_CORPUS)]
        linked = link_recipe_files(args.recipe, args.out / "recipe", [*VAL_VIDEOS, *VAL_CORPUS])
        extra = args.out / "extra"
        if not (extra / ".done").is_file():
            made = make_real_set(
                extra,
                videos,
                seeds=seeds,
                macro_fraction=MACRO_FRACTION,
                workers=args.workers,
                amplitude_px=REAL_AMPLITUDE_PX,
                keep_going=True,
            )
            (extra / ".done").write_text("complete\n")
            print(f"{len(made)} injected validation files in {extra}")
    except (MexliveError, ValueError) as exc:
        return report_error(exc if isinstance(exc, MexliveError) else BadInputError(str(exc)))
    print(f"{linked} recipe validation files linked in {args.out / 'recipe'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
