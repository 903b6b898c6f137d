"""Can the node spotter fit its own training videos? The model stage of "where the signal is
lost": a score that cannot rank the micro-expressions of the very clips it was trained on has
too little training (or too little information in its input), one that can but does not rank
validation's has learned the videos, not the expressions.

    python -m benchmarks.fit_check --features /root/.cache/mexlive/recipe3 \\
        --videos dpe_d,lp_d3,grid_lbbc2a,pcavs_00010,tpsmm_driving,grid_pwij3p \\
        --epochs 200 --weights engines/weights/spotter.pt

Trains a node spotter (the shipped architecture and loss, ``engines.train.loop``) on the real
clips of ``--videos`` only (each ``<video>_plain.npz`` and ``<video>_s<seed>.npz`` under
``--features``), keeps the epoch of lowest training loss, and prints per video the score's
ranking of the injected micro-expressions against windows of the same clips away from them
(``engines.train.operating.ranking_auc``; 0.5 is chance): in-sample, as fitted; and, with
``--weights``, for each of those weights (in-sample too when they were trained on these
videos).
"""

from __future__ import annotations

import argparse
import sys
import time

from engines.errors import BadInputError, MexliveError, report_error


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.fit_check",
        description="In-sample ranking of a node spotter fitted to a few training videos.",
    )
    parser.add_argument("--features", required=True, help="recipe folder (searched recursively)")
    parser.add_argument("--videos", required=True, help="comma-separated training video stems")
    parser.add_argument("--epochs", type=int, default=200, help="epochs of one pass each")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--weights", nargs="*", default=[], help="also rank with these spotter weights"
    )
    return parser


def video_of(clip) -> str:
    """``dpe_d`` of ``dpe_d_s100.npz`` and of ``dpe_d_plain.npz``."""
    return clip.path.stem.rsplit("_", 1)[0]


def ranking_by_video(model, clips, videos: list[str]) -> dict[str, tuple[float, int]]:
    """{video: (AUC, micro-expressions)} of ``model``'s score over each video's clips."""
    from engines.train.operating import ranking_auc
    from engines.train.validation import run_clip

    out = {}
    for video in videos:
        traces = [(c, *run_clip(model, c)) for c in clips if video_of(c) == video]
        value, positives, _ = ranking_auc(traces)
        out[video] = (value, positives)
    return out


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from engines.train.data import as_node_input, load_clips
    from engines.train.loop import TrainConfig, train
    from engines.train.spotter import NODE_MODEL
    from engines.weights import load_spotter

    videos = [v.strip() for v in args.videos.split(",") if v.strip()]
    try:
        if args.epochs < 1:
            raise BadInputError("--epochs must be >= 1")
        clips = [as_node_input(c) for c in load_clips(args.features)]
        chosen = [c for c in clips if c.family == "real" and video_of(c) in videos]
        missing = sorted(set(videos) - {video_of(c) for c in chosen})
        if missing:
            raise BadInputError(f"{args.features}: no real clips of {', '.join(missing)}")
        others = [load_spotter(path) for path in args.weights]
    except MexliveError as exc:
        return report_error(exc)
    model_cfg = {k: v for k, v in NODE_MODEL.items() if k != "select"}
    cfg = TrainConfig(epochs=args.epochs, seed=args.seed, pos_weight=5.0, **model_cfg)
    t0 = time.perf_counter()
    model, summary = train(chosen, [], cfg, log=lambda line: print(line, file=sys.stderr))
    steps = sum(row["steps"] for row in summary["history"])
    fitted = ranking_by_video(model, chosen, videos)
    before = [ranking_by_video(model, chosen, videos) for model, _ in others]
    seconds = time.perf_counter() - t0
    print(
        f"{len(chosen)} clips of {len(videos)} videos; {args.epochs} epochs, {steps} steps, "
        f"epoch {summary['best_epoch']} kept (lowest training loss); {seconds:.0f} s\n"
    )
    heads = "".join(f" AUC {m['sha256'][:12]}… |" for _, m in others)
    print(f"| video | micro-expressions | AUC fitted here (in-sample) |{heads}")
    print("|---|---|---|" + "---|" * len(others))
    for video in videos:
        value, n = fitted[video]
        row = "".join(f" {auc_by_video[video][0]:.3f} |" for auc_by_video in before)
        print(f"| {video} | {n} | {value:.3f} |{row}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
