"""Spotting accuracy of the shipped spotter on feature files, through the exact live path.

Usage:
    python -m benchmarks.bench_spotting --features /tmp/mexlive_data/test [--weights PATH]
        [--onnx STEP.onnx]      # the same replay with ONNX Runtime on that step graph
                                # (FP32, FP16 or INT8 QDQ from calibration.int8)

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

import numpy as np
import torch

from benchmarks.machine_info import cpu_name
from engines.decoding import Spotted
from engines.errors import DataError, MexliveError, report_error
from engines.eval.metrics import VideoIntervals, spotting_matches, spotting_report, strs, uar, uf1
from engines.labels import EMOTIONS, KINDS
from engines.runtime.backends import OnnxRuntimeEngine
from engines.train.data import Clip, load_clips, names_hash
from engines.weights import load_spotter
from stream.contracts import FeatureRow, Frame, FrameResults
from stream.live.spotting import SpottingStage


def replay(weights: str | None, clip: Clip, onnx: str | None = None) -> tuple[list[Spotted], float]:
    """The live stage over one clip (baseline calibration, step, decoder); returns the decided
    intervals and the stage's ms per valid frame. `onnx`: step with ONNX Runtime on that graph
    (another precision) instead of the stage's own engine."""
    decided: list[Spotted] = []
    stage = SpottingStage(lambda event: None, weights=weights, backend="torch")
    if onnx:
        stage.engine = OnnxRuntimeEngine(onnx)
        stage.state = stage.engine.init_state(1)
    stage._emit = decided.append  # keep the decoder's intervals (frame indices) as they are
    rows = clip.x.numpy()
    image = np.zeros((2, 2, 3), np.uint8)
    step_s = 0.0
    for i in range(clip.length):
        frame = Frame(i, round(i / clip.fps * 1e9), i / clip.fps, image)
        row = FeatureRow(i, frame.t_mono_ns, rows[i], bool(clip.valid[i]))
        results = FrameResults(features=row)
        t0 = time.perf_counter()
        stage(frame, results)
        step_s += time.perf_counter() - t0
    decided += stage.decoder.reset()  # the clip ended: decide what is still open
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_spotting", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--features", required=True, help="folder of test clip .npz files")
    parser.add_argument("--weights", default=None, help="spotter .pt (default: shipped)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (live: 1)")
    parser.add_argument(
        "--onnx", default=None, help="step graph to run in ONNX Runtime (FP32/FP16/INT8 QDQ)"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        clips = load_clips(args.features)
        _, manifest = load_spotter(args.weights, expected_features=clips[0].x.shape[1])
    except MexliveError as exc:
        return report_error(exc)
    if manifest.get("feature_names_sha256") not in (None, names_hash(clips[0].names)):
        return report_error(DataError("the test features' layout differs from the training one"))
    trained_on = set(manifest.get("data", {}).get("train_identities", []))
    trained_on |= set(manifest.get("data", {}).get("val_identities", []))
    overlap = sorted(trained_on & {c.identity for c in clips})
    if overlap:
        print(f"warning: identities {overlap} were seen in training/validation", file=sys.stderr)
    results, step_ms = [], []
    for clip in clips:
        events, ms = replay(args.weights, clip, args.onnx)
        results.append((clip, events))
        step_ms.append(ms)
    groups = {
        ident: [r for r in results if r[0].identity == ident]
        for ident in sorted({c.identity for c in clips})
    }
    groups["all"] = results
    valid = {
        ident: float(np.mean([c.valid.float().mean() for c, _ in rows]))
        for ident, rows in groups.items()
    }
    print(f"Spotting on {args.features} — {machine()}")
    sha = str(manifest.get("sha256"))[:12]
    stage_ms = np.mean(step_ms)
    print(f"weights {manifest.get('file')} sha256 {sha}; spotting stage {stage_ms:.2f} ms/frame;")
    engine = f"ONNX Runtime on {args.onnx}" if args.onnx else "torch FP32"
    print(f"live path: SpottingStage (baseline, step, EventDecoder); engine: {engine}\n")
    cols = (
        "identity",
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
    for ident, rows in groups.items():
        s = score(rows)
        cells = (
            ident,
            str(s["clips"]),
            f"{valid[ident]:.0%}",
            str(s["micro_truth"]),
            str(s["macro_truth"]),
            f"{s['micro_f1']:.3f} ({s['micro_p']:.2f}/{s['micro_r']:.2f})",
            f"{s['macro_f1']:.3f}",
            f"{s['overall_f1']:.3f}",
            s["tp_fp_fn"],
            f"{s['uf1']:.3f} (n={s['n_emo']})",
            f"{s['uar']:.3f}",
            f"{s['strs']:.3f}",
        )
        print("| " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
