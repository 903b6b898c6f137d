"""Runs the synthetic face through the full pipeline (alignment, features, spotter) with a
fault schedule, in process, and keeps what the fault tests look at; the fault matrix that
tests/system/test_faults.py checks and benchmarks/fault_matrix.py tabulates.

The clip (seed 340, 9.5 s) holds two micro-expressions with exact ground truth, one before and
one after ``AT``, where each fault of ``MATRIX`` starts. The drill runs the classic spotter
(``engines/classic.py``): it measures fault handling, not accuracy, and the training-free
spotter's events on this clip do not move when new weights ship (it finds both truth events
and nothing else, which test_faults.py holds), so a difference between a faulty run and the
fault-free one is the fault's doing."""

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

CLIP = SyntheticConfig(seed=340, micro_per_min=15, macro_per_min=2)
FPS = CLIP.fps
N_FRAMES = 285
AT = 120  # inner frame where a fault starts: 4.0 s, between the two expressions
SETTLE_S = 1.0  # after a gap, the flow history and the spotter state refill


def iou(a: tuple[float, float], b: tuple[float, float]) -> float:
    inter = min(a[1], b[1]) - max(a[0], b[0])
    union = max(a[1], b[1]) - min(a[0], b[0])
    return max(inter, 0.0) / union if union > 0 else 0.0


def found_again(reference, events) -> bool:
    """An event like ``reference`` (kind, emotion, IoU >= 0.5 in media time) is in ``events``."""
    span = (reference.onset_s, reference.offset_s)
    return any(
        e.kind == reference.kind
        and e.emotion == reference.emotion
        and iou((e.onset_s, e.offset_s), span) >= 0.5
        for e in events
    )


# (faults, last inner frame the fault touches)
MATRIX = {
    # a 3 s stall: the read times out at 2.5 s, reopening fails until 3 s, 90 frames lost
    "stall": ([Fault("stall", AT, 3.0)], AT + 90),
    # unplugged, two failed reopens, back at 480x360 after 20 lost frames
    "disconnect": ([Fault("disconnect", AT, 20, (480, 360))], AT + 20),
    "corrupt": ([Fault("corrupt", AT, 5)], AT + 5),  # 5 undecodable frames
    "garbage": ([Fault("garbage", AT, 4)], AT + 4),  # grey, BGRA, float, empty arrays
    "freeze": ([Fault("freeze", AT, 20)], AT + 20),  # 20 copies of one frame
    "drop": ([Fault("drop", AT, 10)], AT + 10),  # a burst of 10 lost frames
    "pts_repeat": ([Fault("pts_repeat", AT, 6)], AT + 6),  # one timestamp six times
    "pts_swap": ([Fault("pts_swap", AT, 20)], AT + 20),  # neighbours' timestamps swapped
    "pts_back": ([Fault("pts_back", AT, 0, 5.0)], AT),  # the clock restarts 5 s back
    "rate": ([Fault("rate", AT, 45, 15.0)], AT + 45),  # 1.5 s at 15 fps
    "resize": ([Fault("resize", AT, 0, (800, 600))], AT),  # a bigger frame, no reconnect
}


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
    spotter: str = "classic",
) -> Drill:
    """The synthetic clip of ``n_frames`` inner frames through the pipeline, faults injected.

    ``ring_policy="block"`` keeps a slow shared CPU from losing frames to the ring, so that a
    difference from the fault-free run is the fault's doing; the faulty source is still live
    (it reconnects). ``spotter``: "classic" (see the module docstring) or "learned".
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
        spotter=SpotterOptions(backend="onnxruntime", kind=spotter),
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
