"""Runs the synthetic face through the full pipeline (alignment, features, spotter) with a
fault schedule, in process, and keeps what the fault tests look at."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from stream.capture.faults import Fault, FaultySource
from stream.capture.sources import SyntheticSource
from stream.live.builder import (
    LiveConfig,
    RecognizerOptions,
    RunLimits,
    SpotterOptions,
    build_live,
)
from stream.live.pipeline import RunSummary, Stage
from stream.output.events import EventBus, ExpressionEvent, StatusEvent
from stream.synthetic.animator import SyntheticConfig


@dataclass
class Probe:
    """What each processed frame looked like to the stages."""

    seq: int
    segment: int
    shape: tuple[int, ...]
    t_s: float
    gap: bool
    redetected: bool
    face_ok: bool


@dataclass
class Drill:
    summary: RunSummary
    events: list[ExpressionEvent]
    statuses: list[StatusEvent]
    probes: list[Probe]
    counters: dict[str, int]
    stop_s: float  # how long pipeline.stop() took
    reconnects: int = 0
    last_frame_ns: list[int] = field(default_factory=list)

    def status_names(self) -> list[str]:
        return [s.status for s in self.statuses]


class Keep:
    """An EventBus sink that keeps events in memory."""

    def __init__(self) -> None:
        self.events: list = []

    def write(self, event) -> None:
        self.events.append(event)

    def close(self) -> None:
        pass


def run_drill(
    config: SyntheticConfig,
    n_frames: int,
    faults: list[Fault] | None = None,
    ring_policy: str = "block",
    realtime: bool = False,
    stall_timeout_s: float = 2.0,
    backoff_s: tuple[float, float] = (0.25, 1.0),
) -> Drill:
    """The synthetic clip of ``n_frames`` inner frames through the pipeline, faults injected.

    ``ring_policy="block"`` keeps a slow shared CPU from losing frames to the ring, so that a
    difference from the fault-free run is the fault's doing; the faulty source is still live
    (it reconnects).
    """
    keep = Keep()
    bus = EventBus([keep])

    probes: list[Probe] = []
    last_frame_ns: list[int] = []

    def probe(frame, results):
        aligned = results.aligned
        probes.append(
            Probe(
                frame.seq,
                frame.segment,
                frame.image.shape,
                frame.t_s,
                results.gap,
                aligned.redetected,
                aligned.ok,
            )
        )
        last_frame_ns.append(frame.t_mono_ns)

    inner = SyntheticSource(config, realtime=realtime, max_frames=n_frames)
    source = FaultySource(inner, faults or [])
    live = LiveConfig(
        source=source,
        limits=RunLimits(
            ring_capacity=8,
            stall_timeout_s=stall_timeout_s,
            ring_policy=ring_policy,
            backoff_s=backoff_s,
        ),
        stream_name="drill",
        spotter=SpotterOptions(backend="onnxruntime"),
        recognizer=RecognizerOptions(enabled=False),
        extra_stages=(Stage("probe", probe),),
    )
    pipeline = build_live(live, bus).pipeline
    pipeline.start()
    while not pipeline.wait(0.1):
        pass
    t0 = time.monotonic()
    summary = pipeline.stop()
    stop_s = time.monotonic() - t0
    return Drill(
        summary=summary,
        events=[e for e in keep.events if isinstance(e, ExpressionEvent)],
        statuses=[e for e in keep.events if isinstance(e, StatusEvent)],
        probes=probes,
        counters=source.counters(),
        stop_s=stop_s,
        reconnects=pipeline.capture.reconnects,
        last_frame_ns=last_frame_ns,
    )
