"""What each part of mexlive's start-up costs, in a fresh process, in the order a run pays them.

    python -m benchmarks.startup_parts VIDEO      # one JSON line: {part: seconds}

The parts: the interpreter until this module runs, the imports of the CLI, the Numba kernels
loaded from their cache, dlib's face detector, dlib's 68-point predictor (100 MB of trees),
the recognizer (sha256 + ONNX session), the spotter (sha256 + ONNX session), opening the video
and the first frame through every stage. ``bench_end_to_end`` prints them as a table.
"""

from __future__ import annotations

import json
import sys
import time


def main(argv: list[str] | None = None) -> int:
    video = (argv if argv is not None else sys.argv[1:])[0]
    parts: dict[str, float] = {}
    t = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal t
        now = time.perf_counter()
        parts[name] = round(now - t, 4)
        t = now

    import stream.app.cli  # noqa: F401  (what the console script imports first)

    lap("imports")
    from stream.face.flow import warm_up

    warm_up()
    lap("numba kernels (cache)")
    from stream.face.models import new_detector, new_predictor

    new_detector()
    lap("dlib detector")
    new_predictor()
    lap("dlib 68-point predictor")
    from stream.live.recognition import EventRecognizer

    EventRecognizer(backend="onnxruntime")
    lap("recognizer (ONNX)")
    from stream.live.spotting import SpottingStage

    SpottingStage(lambda event: None)
    lap("spotter (ONNX)")
    from stream.live.builder import LiveConfig, RecognizerOptions, RunLimits, build_live
    from stream.output.events import EventBus

    config = LiveConfig(
        source=video,
        limits=RunLimits(max_frames=1),
        recognizer=RecognizerOptions(backend="onnxruntime"),
    )
    run = build_live(config, EventBus([]))
    lap("a whole build_live again (models loaded anew)")
    run.pipeline.run()
    lap("open the video, first frame through every stage")
    print(json.dumps(parts))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
