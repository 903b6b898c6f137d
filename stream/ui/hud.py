"""The HUD on the analysed frame: rates, per-stage latency, face box, apex-score trace with
the threshold, the last events, a recording dot and the privacy-sticker state.

``HudState`` is fed by the pipeline (``observe`` per frame, ``write`` as an EventBus sink) and
read by ``draw_hud``, so the OpenCV window, the Gradio preview and ``--record`` draw the same
thing from the same state::

    hud = HudState()
    bus.sinks.append(hud)                      # expression events for the list
    stages.append(Stage("hud", hud.observe))   # after the spotter: scores, threshold, fps
    draw_hud(image, results, hud, HudOptions(recording=True))
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field

import cv2
import numpy as np

from stream.contracts import Frame, FrameResults
from stream.face.features import roi_block
from stream.output.events import ExpressionEvent, StatusEvent
from stream.output.rates import FrameRates
from stream.ui.overlay import draw_analysis

# BGR. None of these is the ROI squares' yellow, so the HUD and the squares stay apart.
WHITE, GREY, RED, MAGENTA = (255, 255, 255), (170, 170, 170), (0, 0, 255), (255, 0, 255)
EMOTION_COLOURS = {"negative": (80, 80, 255), "positive": (80, 230, 80), "surprise": (0, 150, 255)}
FONT = cv2.FONT_HERSHEY_SIMPLEX
PRIVACY_STATES = ("off", "on", "unavailable")
KEYS_LINE = "q quit  h HUD  l landmarks  p privacy  r rec  c recalibrate  space pause"
LATENCY_SMOOTHING = 0.1  # weight of the newest frame in the shown per-stage latency
HIDDEN_STAGES = ("hud", "metrics", "view")  # the HUD's own consumers are not pipeline stages


@dataclass
class HudOptions:
    """What to draw; the window's keys flip these.

    Attributes:
        hud: the panels (rates, latency, trace, events, states) and the face box.
        landmarks: landmarks, ROI squares and their flow arrows.
        recording: draw the red recording dot.
        privacy: the sticker state shown: "off", "on" or "unavailable".
        keys: the key list along the bottom edge.
    """

    hud: bool = True
    landmarks: bool = True
    recording: bool = False
    privacy: str = "off"
    keys: bool = True

    def __post_init__(self) -> None:
        if self.privacy not in PRIVACY_STATES:
            raise ValueError(f"privacy state {self.privacy!r} not in {PRIVACY_STATES}")


@dataclass(frozen=True)
class HudEvent:
    """One line of the event list."""

    kind: str
    emotion: str
    confidence: float
    apex_s: float


@dataclass
class HudSnapshot:
    """A consistent copy of HudState for one drawing (taken under its lock)."""

    scores: np.ndarray  # (N,) float32 apex score per processed frame, oldest first; NaN: none
    thresholds: np.ndarray  # (N,) float32 decoder threshold per frame; NaN: none
    capture_fps: float
    processed_fps: float
    latency_ms: dict[str, float]
    face: str  # "ok" or why not
    calibrating: bool | None  # None: no spotter
    events: list[HudEvent] = field(default_factory=list)
    state: str = ""  # "spottable", or what hides a micro-expression now; "": no context stage


class HudState:
    """What the HUD shows, fed from the pipeline worker and read from any thread.

    Args:
        trace_len: processed frames in the scrolling score trace (150 = 5 s at 30 fps).
        events_shown: how many of the last expression events are listed.
        rate_window: frames over which the rates are measured.
    """

    def __init__(self, trace_len: int = 150, events_shown: int = 4, rate_window: int = 30):
        self._lock = threading.Lock()
        self._scores = np.full(trace_len, np.nan, np.float32)  # (N,) ring
        self._thresholds = np.full(trace_len, np.nan, np.float32)  # (N,) ring
        self._n = 0
        self.rates = FrameRates(rate_window)
        self._latency_ms: dict[str, float] = {}
        self._face = "no face"
        self._calibrating: bool | None = None
        self._state = ""
        self._events: deque[HudEvent] = deque(maxlen=events_shown)

    def observe(self, frame: Frame, results: FrameResults) -> None:
        """Take one processed frame's results (a pipeline stage: put it after the spotter)."""
        aligned = results.aligned
        with self._lock:
            i = self._n % self._scores.size
            self._scores[i] = np.nan if results.apex_score is None else results.apex_score
            threshold = results.apex_threshold
            self._thresholds[i] = np.nan if threshold is None else threshold
            self._n += 1
            self.rates.add(frame.seq, frame.t_mono_ns)
            for stage, ms in results.latency_ms.items():
                old = self._latency_ms.get(stage, ms)
                self._latency_ms[stage] = old + LATENCY_SMOOTHING * (ms - old)
            if aligned is not None:
                self._face = "ok" if aligned.ok else (aligned.reason or "no face")
            if results.calibrating is not None:
                self._calibrating = results.calibrating
            if results.spottable is not None:
                self._state = face_state(results)

    def write(self, event: StatusEvent | ExpressionEvent) -> None:
        """EventBus sink: keeps the last expression events."""
        if isinstance(event, ExpressionEvent):
            with self._lock:
                self._events.append(
                    HudEvent(event.kind, event.emotion, event.confidence, event.apex_s)
                )

    def close(self) -> None:
        pass

    def snapshot(self) -> HudSnapshot:
        with self._lock:
            order = np.roll(np.arange(self._scores.size), -(self._n % self._scores.size))
            return HudSnapshot(
                scores=self._scores[order],
                thresholds=self._thresholds[order],
                capture_fps=self.rates.capture_fps,
                processed_fps=self.rates.processed_fps,
                latency_ms=dict(self._latency_ms),
                face=self._face,
                calibrating=self._calibrating,
                events=list(self._events),
                state=self._state,
            )


def face_state(results: FrameResults) -> str:
    """ "spottable", or what keeps a micro-expression from being seen on this frame."""
    context = results.context
    if results.spottable or context is None:
        return "spottable" if results.spottable else "no face"
    hidden = [
        name
        for name, on in (
            ("blink", context.blink),
            ("speaking", context.speaking),
            ("head moving", context.head_moving),
            ("brows moving", bool(results.brows_moving)),
        )
        if on
    ]
    return "not spottable: " + ", ".join(hidden)


def draw_hud(
    image: np.ndarray, results: FrameResults, hud_state: HudState, options: HudOptions
) -> np.ndarray:
    """Draw the HUD in place on a BGR (H, W, 3) uint8 frame and return it.

    Args:
        results: the pipeline's per-frame results (``aligned``, ``features``); an empty
            ``FrameResults()`` is fine.
        hud_state: rates, latency, scores and events so far.
        options: what to draw (the window's toggles, recording, privacy state).
    """
    aligned = results.aligned
    if options.landmarks:
        row = results.features
        flow = roi_block(row.values)[:, :2] if row is not None and row.valid else None
        draw_analysis(image, aligned, flow)
    if options.hud:
        state = hud_state.snapshot()
        if aligned is not None and aligned.ok and aligned.landmarks_px is not None:
            draw_face_box(image, aligned.landmarks_px)
        _draw_stats(image, state, options.privacy)
        _draw_events(image, state.events)
        _draw_trace(image, state.scores, state.thresholds)
    if options.recording:
        width = image.shape[1]
        cv2.circle(image, (width - 58, 16), 7, RED, -1, cv2.LINE_AA)
        cv2.putText(image, "REC", (width - 46, 21), FONT, 0.5, RED, 1, cv2.LINE_AA)
    if options.keys:
        _panel(image, 0, image.shape[0] - 16, image.shape[1], image.shape[0])
        cv2.putText(image, KEYS_LINE, (4, image.shape[0] - 4), FONT, 0.36, GREY, 1, cv2.LINE_AA)
    return image


def draw_face_box(image: np.ndarray, landmarks_px: np.ndarray, margin: float = 0.12) -> None:
    """A magenta box around the (68, 2) landmarks, widened by ``margin`` of its size."""
    (x0, y0), (x1, y1) = landmarks_px.min(0), landmarks_px.max(0)
    dx, dy = (x1 - x0) * margin, (y1 - y0) * margin
    top_left = (int(x0 - dx), int(y0 - 2.5 * dy))  # the landmarks stop at the eyebrows
    cv2.rectangle(image, top_left, (int(x1 + dx), int(y1 + dy)), MAGENTA, 2, cv2.LINE_8)


def _panel(image: np.ndarray, x0: int, y0: int, x1: int, y1: int) -> None:
    """Darken a box in place (halving is cheaper than blending) so text reads on any face."""
    region = image[max(y0, 0) : max(y1, 0), max(x0, 0) : max(x1, 0)]
    np.right_shift(region, 1, out=region)


def _draw_stats(image: np.ndarray, state: HudSnapshot, privacy: str) -> None:
    stages = [(k, v) for k, v in state.latency_ms.items() if k not in HIDDEN_STAGES]
    lines = [f"cam {state.capture_fps:5.1f} fps   analysed {state.processed_fps:5.1f} fps"]
    for start in range(0, len(stages), 3):
        lines.append("  ".join(f"{k} {v:.1f}" for k, v in stages[start : start + 3]) + " ms")
    if state.calibrating is None:
        baseline = "no spotter"
    else:
        baseline = "calibrating baseline" if state.calibrating else "baseline set"
    lines.append(f"face {state.face}   {baseline}")
    if state.state:
        lines.append(state.state)
    lines.append(f"privacy sticker: {privacy}")
    height = 8 + 16 * len(lines)
    _panel(image, 0, 0, 262, height)
    for i, text in enumerate(lines):
        cv2.putText(image, text, (5, 17 + 16 * i), FONT, 0.42, WHITE, 1, cv2.LINE_AA)


def _draw_events(image: np.ndarray, events: list[HudEvent]) -> None:
    if not events:
        return
    x0 = image.shape[1] - 200
    _panel(image, x0, 30, image.shape[1], 34 + 16 * len(events))
    for i, event in enumerate(reversed(events)):  # newest on top
        text = f"{event.kind} {event.emotion} {event.confidence:.2f} @{event.apex_s:.1f}s"
        colour = EMOTION_COLOURS.get(event.emotion, WHITE)
        cv2.putText(image, text, (x0 + 4, 45 + 16 * i), FONT, 0.42, colour, 1, cv2.LINE_AA)


def _draw_trace(image: np.ndarray, scores: np.ndarray, thresholds: np.ndarray) -> None:
    """The apex score (white) and the threshold (red) of the last N frames, newest at right."""
    height, width = image.shape[:2]
    top, bottom = height - 76, height - 20
    _panel(image, 0, top, width, bottom)
    if np.isnan(scores).all():
        cv2.putText(image, "apex score: none yet", (6, top + 16), FONT, 0.4, GREY, 1, cv2.LINE_AA)
        return
    peak = float(np.nanmax(np.concatenate([scores, thresholds])))
    scale = (bottom - top - 6) / max(peak, 1.0)
    xs = np.linspace(4, width - 5, scores.size)  # (N,)
    for values, colour in ((thresholds, RED), (scores, WHITE)):
        ys = bottom - 3 - np.nan_to_num(values, nan=0.0) * scale  # (N,)
        points = np.stack([xs, ys], axis=1).astype(np.int32)  # (N, 2)
        cv2.polylines(image, [points], False, colour, 1, cv2.LINE_AA)
    cv2.putText(image, "apex score / threshold", (6, top + 12), FONT, 0.36, GREY, 1, cv2.LINE_AA)
