"""Several sources at once: one pipeline per source, one spotter engine stepping them all.

Each source gets its own capture thread, ring, worker thread, face tracker and decoder (all
per-stream state); the spotter steps of all streams meet in `engines.runtime.batching.SharedSteps`,
which runs one batched engine step per round. Events of every stream go to the one event bus,
told apart by their ``stream`` field. A stream that ends or fails leaves the batch; the others
go on.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stream.capture.sources import open_source
from stream.live.analysis import FaceAnalysis
from stream.live.pipeline import Pipeline, RunSummary, Stage
from stream.live.spotting import SpottingStage
from stream.output.events import EventBus, StatusEvent


def stream_names(base: str, count: int) -> list[str]:
    """cam0 → cam0, cam1, …; a name without a trailing number gets one (door → door0, …)."""
    stem = re.sub(r"\d+$", "", base) or "cam"
    return [f"{stem}{i}" for i in range(count)]


@dataclass
class StreamRun:
    """One source's pipeline and what it produced."""

    name: str
    source_spec: str
    pipeline: Pipeline
    spotter: SpottingStage | None
    summary: RunSummary | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def build_streams(
    specs: list[str],
    bus: EventBus,
    base_name: str,
    open_kwargs: dict[str, Any],
    pipeline_kwargs: dict[str, Any],
    spotter: bool = True,
    backend: str = "auto",
    weights: str | None = None,
    log: Callable[[str], None] = print,
    extra_stages: Callable[[str], list[Stage]] | None = None,
    recognizer: bool = True,
    recognizer_weights: str | None = None,
    recognizer_backend: str = "torch",
) -> list[StreamRun]:
    """Open every source (a bad one raises before any thread starts) and wire its pipeline;
    `extra_stages(name)` adds stages after the spotter (a recorder, a probe). With
    ``recognizer`` each stream gets its own MPFNet recognizer (its own ring of faces; the
    weights are small), fused with the spotter's emotions as in a single stream."""
    shared, recognizers = None, [None] * len(specs)
    if spotter:
        from engines.runtime.backends import make_engine
        from engines.runtime.batching import SharedSteps
        from engines.runtime.cache import default_cache_dir
        from engines.weights import load_spotter
        from stream.face.features import feature_names

        model, manifest = load_spotter(weights, expected_features=len(feature_names()))
        engine = make_engine(backend, model, Path(default_cache_dir()), manifest["sha256"])
        shared = SharedSteps(engine, model.config.n_features)
        log(f"mexlive: {len(specs)} streams on one {engine.name} engine ({engine.reason})")
        recognizers = _recognizers(
            len(specs), recognizer, recognizer_weights, recognizer_backend, log
        )
    sources = [open_source(spec, **open_kwargs) for spec in specs]
    runs = []
    names = stream_names(base_name, len(specs))
    for name, spec, source, recognizer_k in zip(names, specs, sources, recognizers, strict=True):

        def emit(status: str, detail: dict, seq: int | None, name: str = name) -> None:
            bus.emit(StatusEvent(status, name, seq=seq, detail=detail))

        analysis = FaceAnalysis(emit)
        stages = analysis.stages()
        spotting = None
        if shared is not None:
            spotting = SpottingStage(
                bus.emit,
                name,
                weights=weights,
                on_status=emit,
                shared=shared,
                recognizer=recognizer_k,
            )
            stages.append(spotting.stage())
        stages += extra_stages(name) if extra_stages else []
        pipeline = Pipeline(source, bus, stages, stream_name=name, **pipeline_kwargs)
        runs.append(StreamRun(name, spec, pipeline, spotting))
    return runs


def _recognizers(
    n: int, wanted: bool, weights: str | None, backend: str, log: Callable[[str], None]
) -> list:
    """One recognizer per stream, or Nones (``--no-recognizer``, or no shipped weights)."""
    from stream.live.recognition import EventRecognizer, recognizer_from_flags

    first = recognizer_from_flags(weights, not wanted, log, backend)  # says once what it chose
    if first is None:
        return [None] * n
    return [first, *(EventRecognizer(weights, backend=backend) for _ in range(n - 1))]


def run_streams(runs: list[StreamRun], should_stop: Callable[[], bool]) -> None:
    """Start all, wait until each ends (or `should_stop`), stop all; summaries filled in."""
    started = []
    try:
        for run in runs:
            run.pipeline.start()
            started.append(run)
        pending = list(started)
        while pending and not should_stop():
            for run in list(pending):
                if run.pipeline.wait(0.05):
                    _finish(run)
                    pending.remove(run)
    finally:
        for run in started:
            if run.summary is None:
                _finish(run)


def _finish(run: StreamRun) -> None:
    run.summary = run.pipeline.stop()
    if run.spotter is not None:
        run.spotter.close()  # the other streams stop waiting for this one
