"""Per-frame cost of the node spotter's parts after alignment, on a real fixture video.

    python -m benchmarks.bench_node_spotter [--video lp_d6.mp4] [--rounds 5]

The video is decoded and aligned once (dlib, not timed: its cost is in bench_end_to_end);
then, interleaved over ``--rounds`` passes, each part runs over every aligned frame in order as
live: the region rows (``FeatureExtractor``, the classic's input and the HUD's), the node front
end (``NodeFlow``: 3 Lucas-Kanade fields + the rigid fit), the context (``ContextTracker``), the
node input (``NodeInput``) and one step of the shipped spotter with ONNX Runtime. One thread.
Prints the median and p99 per frame of each part and of the node spotter's own chain
(front end + context + input + step; issue 22's goal: ≤ 6 ms median on one core).
"""

from __future__ import annotations

import argparse
import copy
import sys
import time

import numpy as np

from benchmarks.machine_info import cpu_name
from engines.errors import MexliveError, report_error

PARTS = ("region rows", "node front end", "context", "node input", "spotter step (ORT)")
CHAIN = ("node front end", "context", "node input", "spotter step (ORT)")


def aligned_frames(video: str) -> list:
    """Every frame's AlignedFace (copied: the tracker reuses its buffers)."""
    from stream.datasets.featurize import resolve_video
    from stream.face.align import FaceTracker
    from stream.synthetic.decode import VideoReader

    tracker, faces = FaceTracker(), []
    with VideoReader(resolve_video(video)) as reader:
        fps = reader.fps or 30.0
        while (frame := reader.read()) is not None:
            t_s = frame.index / fps
            aligned = tracker.update(frame.image, frame.index, round(t_s * 1e9), t_s)
            faces.append(copy.deepcopy(aligned))
    if not any(f.ok for f in faces):
        raise MexliveError(f"{video}: no face found")
    return faces


def one_pass(faces: list, costs: dict[str, list[float]]) -> None:
    import onnxruntime  # noqa: F401  (the engine below needs it)

    from engines.context import ContextTracker
    from engines.node_inputs import NodeInput
    from engines.runtime.backends import make_engine
    from engines.weights import load_spotter, verify_spotter
    from stream.face.features import FeatureExtractor
    from stream.face.nodes import NodeFlow
    from stream.live.spotting import default_cache_dir

    _, manifest = verify_spotter()
    loader = lambda: load_spotter()[0]  # noqa: E731  (only when no graph is cached yet)
    engine = make_engine("onnxruntime", loader, default_cache_dir(), manifest["sha256"])
    state = engine.init_state(1)
    extractor, nodes = FeatureExtractor(), NodeFlow()
    context, inputs = ContextTracker(), NodeInput()
    x = np.zeros((1, inputs.width), np.float32)
    clock = time.perf_counter
    for face in faces:
        t0 = clock()
        row = extractor.update(face)
        t1 = clock()
        node = nodes.update(face)
        t2 = clock()
        ctx = context.update(face.landmarks_px, face.t_s, face.ok)
        t3 = clock()
        x[0] = inputs.update(node.residual, node.valid, ctx, face.t_s, row.valid)
        t4 = clock()
        if row.valid:
            _, _, state = engine.step(x, state)
        t5 = clock()
        for part, cost in zip(PARTS, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4), strict=True):
            costs[part].append(1e3 * cost)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_node_spotter",
        description="Per-frame cost (ms, one thread) of the node spotter's parts on a real "
        "fixture video: region rows, node front end, context, node input, ONNX Runtime step.",
        epilog="Exit code 2 means bad input (a video that is missing or has no face).",
    )
    parser.add_argument("--video", default="lp_d6.mp4", help="fixture video name or path")
    parser.add_argument("--rounds", type=int, default=5, help="passes over the video")
    args = parser.parse_args(argv)
    import cv2
    import torch

    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    try:
        faces = aligned_frames(args.video)
    except MexliveError as exc:
        return report_error(exc)
    costs: dict[str, list[float]] = {part: [] for part in PARTS}
    for _ in range(args.rounds):
        one_pass(faces, costs)
    chain = np.sum([costs[p] for p in CHAIN], axis=0)
    print(f"Command: `python -m benchmarks.bench_node_spotter --video {args.video} "
          f"--rounds {args.rounds}` — {cpu_name()}, 1 thread; {len(faces)} frames × "
          f"{args.rounds} passes\n")  # fmt: skip
    print("| part | median ms | p99 ms |\n|---|---:|---:|")
    for part in PARTS:
        values = np.asarray(costs[part])
        print(f"| {part} | {np.median(values):.3f} | {np.percentile(values, 99):.3f} |")
    print(f"| **node spotter chain** (front end + context + input + step) | "
          f"{np.median(chain):.3f} | {np.percentile(chain, 99):.3f} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
