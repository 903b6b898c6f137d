"""Spotting accuracy of the shipped spotter on feature files, through the exact live path.

Usage:
    python -m benchmarks.bench_spotting --suite cross [--data ~/.cache/mexlive/cross-suite]
                                # the cross-domain suite (benchmarks/cross_suite.py): made
                                # once, then both spotters in one table
    python -m benchmarks.bench_spotting --suite cross --curve \
        [--plot docs/detectability.png --docs docs/benchmarks.md]
                                # and the detection curve: FROC, recall by amplitude and
                                # context, AUC per stage, the oracle bound, false alarms by
                                # distractor (benchmarks/suite/); the figure and the docs
                                # section only when asked for
    python -m benchmarks.bench_spotting --features /tmp/mexlive_data/test [--weights PATH]
        [--onnx STEP.onnx]      # the same replay with ONNX Runtime on that step graph
                                # (FP32, FP16 or INT8 QDQ from calibration.int8)

Every table has the training-free classic (``engines/classic.py``) beside the learned
spotter, measured in the same run on the same rows.

Each clip (``python -m stream.datasets.features`` output) is replayed frame by frame through
``stream.live.spotting.SpottingStage`` itself, the live stage: the first 2 s of face set the
person's baseline, a valid row goes through ``Spotter.step``, an invalid row resets the model
state; the apex score and emotion probabilities feed ``engines.decoding.EventDecoder`` (running
threshold, fixed look-ahead). Its intervals are scored
with ``engines.eval.metrics`` (MEGC: IoU ≥ 0.5, counts summed over clips before F1): micro, macro
and
overall F1, emotion UF1/UAR on the matched micro-expressions, and STRS = overall spotting F1 ×
emotion UF1 of all matched intervals. One markdown table, a row per identity and one for all.

Use only a test set whose identities and seeds were never seen in training or validation.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from benchmarks.machine_info import cpu_name
from engines.decoding import Spotted
from engines.errors import BadInputError, DataError, MexliveError, report_error
from engines.eval.metrics import VideoIntervals, spotting_matches, spotting_report, strs, uar, uf1
from engines.inputs import takes_nodes
from engines.labels import EMOTIONS, KINDS
from engines.runtime.backends import OnnxRuntimeEngine
from engines.train.data import Clip, load_clips
from engines.weights import load_spotter
from stream.face.features import feature_names
from stream.live.replay import replay_frames
from stream.live.spotting import SpottingStage


def replay(
    weights: str | None, clip: Clip, onnx: str | None = None, spotter: str = "learned"
) -> tuple[list[Spotted], float]:
    """The live stage over one clip (baseline calibration, step, decoder); returns the decided
    intervals and the stage's ms per valid frame. `onnx`: step with ONNX Runtime on that graph
    (another precision) instead of the stage's own engine; `spotter`: "learned" or "classic"."""
    decided: list[Spotted] = []
    stage = SpottingStage(lambda event: None, weights=weights, backend="torch", spotter=spotter)
    if onnx:
        stage.engine = OnnxRuntimeEngine(onnx)
        stage.state = stage.engine.init_state(1)
    stage._emit = decided.append  # keep the decoder's intervals (frame indices) as they are
    step_s = 0.0
    nodes = clip.nodes or {}
    frames = replay_frames(
        clip.x.numpy(),
        clip.valid.numpy(),
        clip.fps,
        nodes.get("node_residual"),
        nodes.get("node_valid"),
        nodes.get("landmarks_px"),
    )
    for frame, results in frames:
        t0 = time.perf_counter()
        stage(frame, results)
        step_s += time.perf_counter() - t0
    stage.finish()  # the clip ended: decide what is still open, as the live stage does
    return decided, 1e3 * step_s / max(int(clip.valid.sum()), 1)


def score(results: Sequence[tuple[Clip, list[Spotted]]]) -> dict[str, float]:
    videos, micro_true, micro_pred, all_true, all_pred = [], [], [], [], []
    for clip, events in results:
        pred = [(e.onset_seq, e.offset_seq, e.kind) for e in events]
        truth = [(t.onset, t.offset, t.kind) for t in clip.truth]
        videos.append(VideoIntervals(pred, truth))
        for kind in KINDS:
            p = [e for e in events if e.kind == kind]
            t = [r for r in clip.truth if r.kind == kind]
            pairs = spotting_matches(
                [(e.onset_seq, e.offset_seq) for e in p], [(r.onset, r.offset) for r in t]
            )
            for i, j in pairs:
                if t[j].emotion not in EMOTIONS:
                    continue
                all_true.append(t[j].emotion)
                all_pred.append(p[i].emotion)
                if kind == "micro":
                    micro_true.append(t[j].emotion)
                    micro_pred.append(p[i].emotion)
    report = spotting_report(videos)
    overall = report["overall"]
    return {
        "clips": len(results),
        "micro_truth": report["micro"]["tp"] + report["micro"]["fn"],
        "macro_truth": report["macro"]["tp"] + report["macro"]["fn"],
        "micro_f1": report["micro"]["f1"],
        "micro_p": report["micro"]["precision"],
        "micro_r": report["micro"]["recall"],
        "macro_f1": report["macro"]["f1"],
        "overall_f1": overall["f1"],
        "tp_fp_fn": f"{overall['tp']}/{overall['fp']}/{overall['fn']}",
        "uf1": uf1(micro_true, micro_pred, EMOTIONS),
        "uar": uar(micro_true, micro_pred, EMOTIONS),
        "n_emo": len(micro_true),
        "strs": strs(overall["f1"], uf1(all_true, all_pred, EMOTIONS)),
    }


def machine() -> str:
    return f"{cpu_name()}, torch {torch.__version__} CPU, {torch.get_num_threads()} thread(s)"


SPOTTERS = ("learned", "classic")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_spotting", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--features", default=None, help="folder of test clip .npz files")
    parser.add_argument(
        "--suite",
        choices=("cross",),
        default=None,
        help="the cross-domain suite instead of --features (made once under --data)",
    )
    parser.add_argument(
        "--data",
        default=None,
        help="where the suite's feature files are kept (default: the cache folder)",
    )
    parser.add_argument("--weights", default=None, help="spotter .pt (default: shipped)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (live: 1)")
    parser.add_argument(
        "--onnx", default=None, help="step graph to run in ONNX Runtime (FP32/FP16/INT8 QDQ)"
    )
    parser.add_argument(
        "--curve",
        action="store_true",
        help="with --suite: also the detection curve and stage detectability of the real rows",
    )
    parser.add_argument(
        "--plot",
        default=None,
        help="with --curve: write the figure here (none without it, so measuring another "
        "weights file never replaces the documented figure; --docs needs it)",
    )
    parser.add_argument(
        "--docs",
        default=None,
        help="with --curve: write the tables into this markdown file between its "
        "'<!-- curve:begin -->' and '<!-- curve:end -->' lines",
    )
    parser.add_argument(
        "--no-synthetic",
        action="store_true",
        help="with --suite: only the real rows (the synthetic sets are not made or scored)",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if (args.features is None) == (args.suite is None):
        return report_error(BadInputError("give --features FOLDER or --suite cross"))
    if args.docs and not args.plot:  # the section links the figure it was made with
        return report_error(BadInputError("--docs needs --plot (the figure the section shows)"))
    try:
        if args.suite:
            return _suite(args)
        clips = load_clips(args.features)
        manifest = _check_weights(args.weights, clips)
    except MexliveError as exc:
        return report_error(exc)
    results = {name: [] for name in SPOTTERS}
    step_ms: dict[str, list[float]] = {name: [] for name in SPOTTERS}
    for clip in clips:
        for name in SPOTTERS:
            events, ms = replay(args.weights, clip, args.onnx if name == "learned" else None, name)
            results[name].append((clip, events))
            step_ms[name].append(ms)
    print(f"Spotting on {args.features} — {machine()}")
    sha = str(manifest.get("sha256"))[:12]
    stage_ms = " / ".join(f"{name} {np.mean(step_ms[name]):.2f}" for name in SPOTTERS)
    print(f"weights {manifest.get('file')} sha256 {sha}; spotting stage ms/frame: {stage_ms};")
    engine = f"ONNX Runtime on {args.onnx}" if args.onnx else "torch FP32"
    print(f"live path: SpottingStage (baseline, step, EventDecoder); engine: {engine}\n")
    _identity_table(clips, results)
    return 0


def _check_weights(weights: str | None, clips: Sequence[Clip]) -> dict:
    """The manifest of the weights, after checking they fit the clips' layout; warns when a
    test identity was seen in training or validation."""
    # load_spotter refuses weights whose input layout (and its hash) these rows cannot feed
    _, manifest = load_spotter(weights, feature_names=clips[0].names)
    if takes_nodes(manifest):  # the node spotter also needs the live stage's region rows
        for clip in clips:
            if clip.nodes is None:
                raise DataError(
                    f"{clip.path}: no node arrays (node_residual, node_valid, landmarks_px): "
                    "the node spotter cannot be replayed on it; regenerate the features"
                )
        if tuple(clips[0].names) != tuple(feature_names()):
            raise DataError(
                f"{clips[0].path}: {len(clips[0].names)} region columns, the live stage reads "
                f"{len(feature_names())} (another feature layout: regenerate the features)"
            )
    data = manifest.get("data", {})
    trained_on = set(data.get("train_identities", [])) | set(data.get("val_identities", []))
    overlap = sorted(trained_on & {c.identity for c in clips})
    if overlap:
        print(f"warning: identities {overlap} were seen in training/validation", file=sys.stderr)
    return manifest


def _identity_table(clips: Sequence[Clip], results: dict[str, list]) -> None:
    cols = (
        "identity",
        "spotter",
        "clips",
        "valid",
        "micro (n)",
        "macro (n)",
        "micro F1 (P/R)",
        "macro F1",
        "overall F1",
        "TP/FP/FN",
        "micro UF1",
        "micro UAR",
        "STRS",
    )
    print("| " + " | ".join(cols) + " |")
    print("|" + "|".join("---" for _ in cols) + "|")
    for ident in [*sorted({c.identity for c in clips}), "all"]:
        for name in SPOTTERS:
            rows = [r for r in results[name] if ident == "all" or r[0].identity == ident]
            s = score(rows)
            valid = float(np.mean([c.valid.float().mean() for c, _ in rows]))
            cells = (
                ident,
                name,
                str(s["clips"]),
                f"{valid:.0%}",
                str(s["micro_truth"]),
                str(s["macro_truth"]),
                f"{s['micro_f1']:.3f} ({s['micro_p']:.2f}/{s['micro_r']:.2f})",
                f"{s['macro_f1']:.3f}",
                f"{s['overall_f1']:.3f}",
                s["tp_fp_fn"],
                f"{s['uf1']:.3f} (n={s['n_emo']})" if name == "learned" else "–",
                f"{s['uar']:.3f}" if name == "learned" else "–",
                f"{s['strs']:.3f}" if name == "learned" else "–",
            )
            print("| " + " | ".join(cells) + " |")


def _suite(args) -> int:
    """The cross-domain suite: every set, both spotters, one table, then the goals."""
    from benchmarks.cross_suite import TABLE_HEAD, build_suite, count, pool, table_rows
    from engines.runtime.cache import default_cache_dir

    root = Path(args.data) if args.data else Path(default_cache_dir()) / "cross-suite"
    sets = build_suite(root, synthetic=not args.no_synthetic)
    loaded = [(s, load_clips(s.folder)) for s in sets]
    manifest = _check_weights(args.weights, loaded[0][1])
    print(f"Cross-domain spotting suite ({root}) — {machine()}")
    print(f"weights {manifest.get('file')} sha256 {str(manifest.get('sha256'))[:12]}\n")
    print(TABLE_HEAD)
    totals: dict[str, dict] = {name: {} for name in SPOTTERS}
    for suite_set, clips in loaded:
        for name in SPOTTERS:
            counts = count([(c, replay(args.weights, c, None, name)[0]) for c in clips])
            totals[name][suite_set.name] = counts
            print(table_rows(suite_set.name, name, counts, suite_set.plain), flush=True)
    pooled = {}
    for name in SPOTTERS:
        scored = [c for s, c in zip(sets, totals[name].values(), strict=True) if not s.plain]
        pooled[name] = pool(scored)
        print(table_rows("all with truth (pooled)", name, pooled[name], False))
    _goals(totals["learned"], pooled)
    if args.curve:
        _curve(args, sets)
    return 0


def _curve(args, sets) -> None:
    """The detection curve of the real rows (benchmarks/suite/curve.py), printed, plotted and
    optionally written into the docs."""
    from benchmarks.suite.curve import measure
    from benchmarks.suite.report import all_tables, plot
    from benchmarks.suite.stages import SuiteClip

    injected = [SuiteClip.load(p) for p in sorted(sets[-2].folder.glob("*.npz"))]
    plain = [SuiteClip.load(p) for p in sorted(sets[-1].folder.glob("*.npz"))]
    t0 = time.perf_counter()
    measured = measure(injected, plain, args.weights)
    tables = all_tables(measured)
    command = "python -m benchmarks.bench_spotting " + " ".join(sys.argv[1:])
    header = f"Command: `{command}` — {machine()}; {time.perf_counter() - t0:.0f} s\n\n"
    print("\n" + header + tables)
    if args.plot:
        plot(measured, args.plot)
        print(f"figure: {args.plot}")
    if args.docs:
        _write_section(
            Path(args.docs), header + tables + f"\n![detectability]({Path(args.plot).name})\n"
        )


def _write_section(path: Path, text: str) -> None:
    """Replace the lines between the curve markers of ``path`` (appended when absent)."""
    begin, end = "<!-- curve:begin -->", "<!-- curve:end -->"
    doc = path.read_text() if path.is_file() else ""
    block = f"{begin}\n{text}{end}"
    if begin in doc and end in doc:
        doc = doc[: doc.index(begin)] + block + doc[doc.index(end) + len(end) :]
    else:
        doc = doc.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(doc)


def _goals(learned: dict, pooled: dict) -> None:
    """The issue's goals for the learned spotter, each stated as measured: met or not."""
    injected = learned["injected into held-out real video"]
    plain = learned["held-out real video, nothing injected"]
    micro, base = pooled["learned"].f1("micro"), pooled["classic"].f1("micro")
    macro = pooled["learned"].f1("macro")
    recall, false_min = injected.recall("micro"), plain.per_min("micro")
    ratio = micro / base if base else float("inf")
    goals = (
        ("micro F1 ≥ 0.85 (pooled)", micro, micro >= 0.85),
        ("micro F1 ≥ 2× the classic's", ratio, ratio >= 2.0),
        ("macro F1 ≥ 0.9 (pooled)", macro, macro >= 0.9),
        ("micro recall ≥ 0.7, injected real", recall, recall >= 0.7),
        ("≤ 1 false micro / min, real talking", false_min, false_min <= 1.0),
    )
    print("\n| goal (learned spotter) | measured | met |\n|---|---|---|")
    for goal, value, met in goals:
        print(f"| {goal} | {value:.2f} | {'yes' if met else 'NO'} |")


if __name__ == "__main__":
    sys.exit(main())
