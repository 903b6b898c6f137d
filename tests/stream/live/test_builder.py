"""The builder: stage order, the handles it returns, a run that balances, many streams' names."""

from __future__ import annotations

import functools

from stream.capture.sources import SyntheticSource
from stream.live.builder import (
    LiveConfig,
    OpenOptions,
    RecognizerOptions,
    RunLimits,
    SpotterOptions,
    bare_pipeline,
    build_live,
)
from stream.live.pipeline import Stage
from stream.output.events import EventBus
from stream.privacy.live import PrivacyOptions, privacy_stage
from stream.synthetic.animator import SyntheticConfig

SMALL = SyntheticConfig(seed=1, width=160, height=120, face_height_px=60)


def test_stages_in_order_and_the_handles():
    seen = []
    config = LiveConfig(
        source=SyntheticSource(SMALL, realtime=False, max_frames=5),
        spotter=SpotterOptions(backend="torch"),
        recognizer=RecognizerOptions(enabled=False),
        privacy=functools.partial(privacy_stage, PrivacyOptions(draw=True)),
        first_stages=(Stage("first", lambda f, r: seen.append(r.gap)),),
        extra_stages=lambda parts: [Stage(f"after_{parts.name}", lambda f, r: None)],
        stream_name="door0",
    )
    run = build_live(config, EventBus())
    names = [stage.name for stage in run.pipeline.stages]
    assert names == ["first", "align", "features", "context", "spot", "privacy", "after_door0"]
    assert run.spotter is not None and run.analysis is not None and run.privacy is not None
    assert run.spotter.recognizer is None and run.name == "door0"
    summary = run.pipeline.run()
    assert summary.balanced and summary.processed == 5 and len(seen) == 5


def test_a_spec_is_opened_with_the_open_options():
    run = build_live(
        LiveConfig(source="synthetic:3", open=OpenOptions(realtime=False), analysis=False),
        EventBus(),
    )
    assert run.source.name == "synthetic:3" and not run.source.realtime
    assert run.source_spec == "synthetic:3" and run.spotter is None and run.analysis is None


def test_bare_pipeline_runs_only_its_stages():
    frames = []
    source = SyntheticSource(SMALL, realtime=False, max_frames=4)
    pipeline = bare_pipeline(source, EventBus(), [Stage("keep", lambda f, r: frames.append(f.seq))])
    assert [s.name for s in pipeline.stages] == ["keep"]
    assert pipeline.run().balanced and frames == [0, 1, 2, 3]


def test_limits_reach_the_pipeline():
    source = SyntheticSource(SMALL, realtime=False)
    limits = RunLimits(ring_capacity=3, max_frames=7, ring_policy="block", backoff_s=(0.0, 0.1))
    run = build_live(LiveConfig(source=source, limits=limits, analysis=False), EventBus())
    assert run.pipeline.ring.policy == "block" and run.pipeline.max_frames == 7
    assert run.pipeline.capture.backoff_s == (0.0, 0.1)


def test_the_end_of_a_file_decides_what_the_spotter_holds():
    # An expression cut by the end of a file is still an event: the spotter's finish() runs
    # on the worker after the last frame, before the run ends.
    config = LiveConfig(
        source=SyntheticSource(SMALL, realtime=False, max_frames=3),
        spotter=SpotterOptions(kind="classic"),
        recognizer=RecognizerOptions(enabled=False),
    )
    run = build_live(config, EventBus())
    assert run.pipeline.end_of_stream[-1] == run.spotter.finish  # after the blink still open
    calls = []
    run.pipeline.end_of_stream.append(lambda: calls.append(run.pipeline.processed))
    summary = run.pipeline.run()
    assert summary.balanced and calls == [3]
