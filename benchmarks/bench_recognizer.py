"""Emotion of live-spotted events: the spotter's head alone, the recognizer (-P, -C), fused.

Usage:
    python -m benchmarks.bench_recognizer --count 10 --seconds 30 --seed 1 \\
        --photos lp_s2.jpg,lp_d8.jpg

Renders the same held-out clips as the spotter's test set (``python -m stream.datasets.features ...
--seed 1 --photos lp_s2.jpg,lp_d8.jpg``: animator seed SEED*1000+i, through H.264 unless
``--no-h264``) and runs each frame through the live stages: ``FaceTracker`` → ``FeatureExtractor``
→ ``SpottingStage`` with the ``EventRecognizer`` fused in (the shipped weights of both). Every
emitted event is matched to the truth (MEGC: IoU ≥ 0.5, one-to-one, per kind), and on the
matched events the emotion is scored (UF1 / UAR over negative, positive, surprise) as the
spotter's head gave it, as MPFNet-P and MPFNet-C gave it on the same flow stack, and fused
(the event's ``emotion``). Also the recognizer's cost per event (stack + forward), ms.
"""

from __future__ import annotations

import argparse
import multiprocessing
import platform
import sys
import tempfile
from pathlib import Path

import numpy as np

from engines.eval.metrics import spotting_matches, uar, uf1
from engines.labels import EMOTIONS, KINDS
from stream.live.recognition import EventRecognizer

SOURCES = ("spotter", "recognizer P", "recognizer C", "fused")


class BothVariants(EventRecognizer):
    """The live recognizer that also keeps both variants' answers for each event."""

    def __init__(self) -> None:
        super().__init__()
        self.answers: dict[tuple[int, int], dict[str, str]] = {}

    def fuse(self, spotter_probs, onset, apex):
        probs, sources, ms = super().fuse(spotter_probs, onset, apex)
        stack = self.stack(onset, apex)
        if stack is not None:
            self.answers[(onset, apex)] = {
                f"recognizer {v}": EMOTIONS[int(np.argmax(self.probabilities(stack, v)))]
                for v in ("P", "C")
            }
        return probs, sources, ms


def run_clip(job: tuple[int, int, str, float, float, bool]) -> dict:
    """One clip through the live stages; its matched (truth, answers) pairs and costs."""
    index, seed, photo, seconds, fps, h264 = job
    import torch

    from stream.contracts import Frame, FrameResults
    from stream.datasets.features import _frames, resolve_photo
    from stream.face.align import FaceTracker
    from stream.face.features import FeatureExtractor
    from stream.face.flow import warm_up
    from stream.live.spotting import SpottingStage
    from stream.synthetic.animator import FaceAnimator, SyntheticConfig

    warm_up()
    torch.set_num_threads(1)
    animator = FaceAnimator(SyntheticConfig(seed=seed, photo=resolve_photo(photo), fps=fps))
    n_frames = round(seconds * fps)
    events: list = []
    recognizer = BothVariants()
    stage = SpottingStage(events.append, recognizer=recognizer, backend="torch")
    tracker, extractor = FaceTracker(), FeatureExtractor()
    with tempfile.TemporaryDirectory(prefix="mexlive_bench_") as tmp:
        for i, _, image in _frames(animator, n_frames, h264, Path(tmp) / "clip.mp4"):
            t_s = i / fps
            frame = Frame(i, round(t_s * 1e9), t_s, image)
            aligned = tracker.update(image, i, frame.t_mono_ns, t_s)
            results = FrameResults(aligned=aligned, features=extractor.update(aligned))
            stage(frame, results)
    for spotted in stage.decoder.reset():  # the clip ended: decide what is still open
        stage._emit(spotted)
    truth = [e for e in animator.events_between(0, n_frames) if e.kind in KINDS]
    pairs = []
    for kind in KINDS:
        got = [e for e in events if e.kind == kind]
        want = [t for t in truth if t.kind == kind]
        matches = spotting_matches(
            [(e.onset_frame, e.offset_frame) for e in got], [(t.onset, t.offset) for t in want]
        )
        for p, t in matches:
            event = got[p]
            sources = event.emotion_sources or {}
            spotter = sources.get("spotter", event.emotion_probs)
            answers = {"spotter": max(spotter, key=spotter.get), "fused": event.emotion}
            answers.update(recognizer.answers.get((event.onset_frame, event.apex_frame), {}))
            pairs.append((kind, want[t].emotion, answers))
    costs = [e.latency_ms["recognizer"] for e in events if "recognizer" in e.latency_ms]
    return {
        "index": index,
        "photo": photo,
        "pairs": pairs,
        "events": len(events),
        "truth": len(truth),
        "costs": costs,
    }


def table(results: list[dict]) -> str:
    lines = [
        "| events | n | " + " | ".join(f"{s} UF1 / UAR" for s in SOURCES) + " |",
        "|---|---:|" + "---|" * len(SOURCES),
    ]
    for label, kinds in (("micro", {"micro"}), ("macro", {"macro"}), ("all", {"micro", "macro"})):
        rows = [
            (want, answers) for r in results for kind, want, answers in r["pairs"] if kind in kinds
        ]
        cells = []
        for source in SOURCES:
            scored = [(w, a[source]) for w, a in rows if source in a]
            truth, pred = [w for w, _ in scored], [p for _, p in scored]
            missing = len(rows) - len(scored)
            note = f" ({missing} without stack)" if missing else ""
            cells.append(
                f"{uf1(truth, pred, EMOTIONS):.3f} / {uar(truth, pred, EMOTIONS):.3f}" + note
            )
        lines.append(f"| matched {label} | {len(rows)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_recognizer", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--count", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--photos", default="lp_s2.jpg,lp_d8.jpg")
    parser.add_argument("--no-h264", action="store_true")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    photos = [p for p in args.photos.split(",") if p]
    jobs = [
        (i, args.seed * 1000 + i, photos[i % len(photos)], args.seconds, args.fps, not args.no_h264)
        for i in range(args.count)
    ]
    with multiprocessing.get_context("spawn").Pool(args.workers) as pool:
        results = sorted(pool.imap_unordered(run_clip, jobs), key=lambda r: r["index"])
    costs = np.array([c for r in results for c in r["costs"]])
    print(
        f"machine: {platform.processor() or platform.machine()}, {args.count} clips "
        f"({', '.join(photos)}), {sum(r['truth'] for r in results)} true expressions, "
        f"{sum(r['events'] for r in results)} events"
    )
    print(table(results))
    if costs.size:
        p50, p99 = np.percentile(costs, [50, 99])
        print(
            f"\nrecognizer per event (stack + forward): median {p50:.1f} ms, p99 {p99:.1f} ms "
            f"over {costs.size} events"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
