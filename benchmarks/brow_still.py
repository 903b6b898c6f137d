"""The brow-stillness threshold of ``spottable`` (``stream.live.context.STILL_PX``), measured on
validation clips only:

    python -m benchmarks.brow_still --features /root/.cache/mexlive/recipe3 \\
        --videos lp_d11,pcavs_00015,iplap_129,edtalk_mouth_source

For each named validation video (a ``<video>_plain.npz`` and its injected ``<video>_s<seed>.npz``
anywhere under ``--features``), the micro-expressions injected with an apex of >= 2 px (at 90 px
between the eyes) are labelled as the suite labels them (``benchmarks.suite``), and the
expression's own flow at its brow nodes is measured: injected minus plain at the same frames,
its peak over the interval (``benchmarks.suite.front_end.node_noise``, aligned-face px). The
median over the brow expressions is the motion a just-visible brow micro-expression gives its
own nodes; ``STILL_PX`` is that median, rounded down. The table also gives, per plain video,
the share of its frames that the live rule (``BrowMotion``: the brows' largest motion over the
last second at most the threshold) calls still.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engines.errors import BadInputError, MexliveError, report_error


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.brow_still",
        description="Brow motion of >= 2-px injected expressions on validation clips.",
    )
    parser.add_argument("--features", required=True, help="recipe folder (searched recursively)")
    parser.add_argument(
        "--videos", required=True, help="comma-separated validation video stems (no suite clip)"
    )
    return parser


def load_pairs(features: Path, videos: list[str]):
    """(injected clips, plain clips) of ``videos`` under ``features``; the injected ones only
    where their plain partner has the same length."""
    from benchmarks.suite.stages import SuiteClip

    injected, plain = [], []
    for video in videos:
        found = sorted(features.rglob(f"{video}_plain.npz"))
        if not found:
            raise BadInputError(f"{features}: no {video}_plain.npz")
        plain.append(SuiteClip.load(found[0]))
        for path in sorted(features.rglob(f"{video}_s*.npz")):
            clip = SuiteClip.load(path)
            if clip.video == video and clip.length == plain[-1].length:
                injected.append(clip)
    return injected, plain


def measure(injected, plain, still_px: float) -> tuple[dict, dict[str, float]]:
    """(``node_noise`` rows of the >= 2 px expressions, {plain video: share of still frames})."""
    from benchmarks.suite import curve
    from benchmarks.suite.front_end import brows_still, node_noise

    partner = {clip.video: k for k, clip in enumerate(plain)}
    contexts = [curve._context(clip) for clip in plain]
    labels, _ = curve._labels(injected, [contexts[partner[c.video]] for c in injected])
    large = [e for e in labels if e.amplitude_90 >= 2.0]
    pairs = [(clip, plain[partner[clip.video]]) for clip in injected]
    calm = [~(c.blink | c.speaking | c.head_moving) for c in contexts]
    rows = node_noise(large, pairs, plain, calm)
    still = {clip.video: float(brows_still(clip, still_px).mean()) for clip in plain}
    return rows, still


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from stream.live.context import STILL_PX

    videos = [v.strip() for v in args.videos.split(",") if v.strip()]
    try:
        injected, plain = load_pairs(Path(args.features), videos)
        rows, still = measure(injected, plain, STILL_PX)
    except MexliveError as exc:
        return report_error(exc)
    brows = rows["brows"]
    print(f"{len(injected)} injected and {len(plain)} plain validation clips ({', '.join(videos)})")
    print(
        f"\nbrow expressions >= 2 px: n = {int(brows['n'])}; their own brow-node motion, px "
        f"(aligned 160-px face): median {brows['signal_p50']:.2f}, p90 {brows['signal_p90']:.2f}"
    )
    print(f"live threshold STILL_PX = {STILL_PX}\n")
    print("| plain video | still frames (brows ≤ STILL_PX over the last second) |")
    print("|---|---|")
    for video, share in still.items():
        print(f"| {video} | {share:.0%} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
