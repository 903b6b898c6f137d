"""Several sources on one batched engine: each stream scores exactly as it does alone."""

from __future__ import annotations

import numpy as np
import pytest

from engines.labels import KINDS
from stream.live.builder import (
    LiveConfig,
    OpenOptions,
    RecognizerOptions,
    RunLimits,
    SpotterOptions,
    build_many,
    stream_names,
)
from stream.live.drill import Keep
from stream.live.multi import run_streams
from stream.live.pipeline import Stage
from stream.output.events import EventBus

FRAMES = 150
OPEN = OpenOptions(fps=30.0, realtime=False)  # lossless: every frame analysed, runs repeatable


def test_stream_names() -> None:
    assert stream_names("cam0", 3) == ["cam0", "cam1", "cam2"]
    assert stream_names("door", 2) == ["door0", "door1"]


def _scores(specs: list[str]) -> dict[str, tuple[list[float], int]]:
    """Per stream: the apex score of every frame, and the expression events it emitted."""
    scores: dict[str, list[float]] = {}

    def probe(parts) -> list[Stage]:
        kept = scores[parts.name] = []

        def keep(frame, results) -> None:
            kept.append(np.nan if results.apex_score is None else results.apex_score)

        return [Stage("probe", keep)]

    bus = EventBus()
    config = LiveConfig(
        open=OPEN,
        limits=RunLimits(max_frames=FRAMES),
        spotter=SpotterOptions(backend="torch"),
        recognizer=RecognizerOptions(enabled=False),
        extra_stages=probe,
    )
    runs = build_many(config, specs, bus)
    run_streams(runs, lambda: False)
    assert all(run.summary is not None and run.summary.balanced for run in runs)
    assert all(run.summary.processed == FRAMES for run in runs)
    return {run.source_spec: (scores[run.name], bus.expressions_of(run.name)) for run in runs}


@pytest.mark.slow
def test_streams_together_score_as_alone() -> None:
    together = _scores(["synthetic:3", "synthetic:4"])
    for spec in ("synthetic:3", "synthetic:4"):
        alone = _scores([spec])[spec]
        # Same rows, same model; batch 2 vs batch 1 may sum in another order: 1e-5.
        np.testing.assert_allclose(together[spec][0], alone[0], atol=1e-5, err_msg=spec)
        assert together[spec][1] == alone[1], spec
    assert np.isfinite(together["synthetic:3"][0]).sum() > FRAMES // 2  # a face was scored


@pytest.mark.slow
def test_each_stream_fuses_its_own_recognizer() -> None:
    """Two streams, each with its recognizer: every expression's emotion is fused from the
    faces of its own stream (a stream reading the other's ring would find no faces there)."""
    sink = Keep()
    config = LiveConfig(
        open=OPEN,
        limits=RunLimits(max_frames=450),
        spotter=SpotterOptions(backend="torch"),
        recognizer=RecognizerOptions(backend="torch"),
    )
    runs = build_many(config, ["synthetic:5", "synthetic:6"], EventBus([sink]))
    run_streams(runs, lambda: False)
    recognizers = [run.spotter.recognizer for run in runs]
    assert recognizers[0] is not None and recognizers[0] is not recognizers[1]
    expressions = [e for e in sink.events if getattr(e, "kind", None) in KINDS]
    assert {e.stream for e in expressions} == {"cam0", "cam1"}
    assert all(e.emotion_sources is not None for e in expressions)
    for stream in ("cam0", "cam1"):  # recognised from this stream's own faces
        fused = [e for e in expressions if e.stream == stream and e.emotion_sources["recognizer"]]
        assert fused and all(e.emotion_sources["fusion"] == "mean" for e in fused), stream
