"""What the preview page shows beside the frames: the stats panel, the apex-score plot and the
events table, from what ``PreviewSession`` reports (no Gradio here; the page in
``stream/ui/preview.py`` puts them on the screen)."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from stream.face.features import FeatureConfig
from stream.output.events import ExpressionEvent, StatusEvent

# Motion is measured against a face 60-250 ms older (stream/face/features.py): slower than one frame
# per 250 ms, no frame has a reference and nothing is scored.
MIN_FPS = 1e3 / FeatureConfig().onset_range_ms[1]


EVENT_COLUMNS = ["apex s", "kind", "emotion", "confidence", "onset–offset s", "ms", "regions"]


@dataclass
class PreviewStats:
    """Rates over the last few seconds and latencies of the running session."""

    running: bool = False
    mode: str = ""
    source: str = ""
    capture_fps: float = 0.0  # frames the source delivered per second
    processed_fps: float = 0.0  # frames analysed per second
    latency_ms: float = 0.0  # capture -> analysed (median of the recent frames)
    latency_p99_ms: float = 0.0
    display_ms: float = 0.0  # capture -> annotated frame handed to the page (median)
    display_p99_ms: float = 0.0
    captured: int = 0
    processed: int = 0
    dropped: int = 0
    expressions: int = 0
    threshold: float = 0.0


class EventTable:
    """An EventBus sink keeping the last expression events for the page (any thread)."""

    def __init__(self, size: int) -> None:
        self._events: deque[ExpressionEvent] = deque(maxlen=size)
        self._lock = threading.Lock()
        self.version = 0

    def write(self, event: StatusEvent | ExpressionEvent) -> None:
        if isinstance(event, ExpressionEvent):
            with self._lock:
                self._events.append(event)
                self.version += 1

    def rows(self) -> list[list[Any]]:
        with self._lock:
            events = list(self._events)
        return [
            [
                e.apex_s,
                e.kind,
                e.emotion,
                e.confidence,
                f"{e.onset_s:.2f}–{e.offset_s:.2f}",
                round((e.offset_s - e.onset_s) * 1e3),
                ", ".join(e.rois),
            ]
            for e in reversed(events)
        ]

    def close(self) -> None:
        pass


def stats_markdown(stats: PreviewStats, stream_every_s: float = 0.1) -> str:
    """The stats panel: rates, latency, accounting."""
    if not stats.running and not stats.processed:
        return "not running"
    if stats.mode == "browser":
        rate = (
            f"**analysing {stats.processed_fps:.1f} frames/s**: every frame that reaches "
            f"the server ({stats.capture_fps:.1f}/s; the page posts one every "
            f"{stream_every_s * 1e3:.0f} ms and Gradio hands over the newest each time the "
            "previous one is done)"
        )
        if stats.running and 0 < stats.processed_fps < MIN_FPS:
            rate += (
                f"  \n**too slow to spot anything**: below {MIN_FPS:.0f} frames/s no "
                "earlier frame lies within the 250 ms the motion features compare "
                "against"
            )
    else:
        rate = (
            f"**analysing {stats.processed_fps:.1f} frames/s** of "
            f"{stats.capture_fps:.1f} captured/s from {stats.source}"
        )
    return (
        f"{rate}  \ncapture → analysed: {stats.latency_ms:.0f} ms median, "
        f"{stats.latency_p99_ms:.0f} ms p99; → annotated frame sent to the page: "
        f"{stats.display_ms:.0f} ms median  \nframes: {stats.captured} captured, "
        f"{stats.processed} analysed, {stats.dropped} dropped  \nexpressions: "
        f"{stats.expressions}, threshold {stats.threshold:.2f}"
        + ("" if stats.running else "  \n(stopped)")
    )


def draw_score_plot(trace: np.ndarray, span_s: float, size: tuple[int, int] = (520, 200)):
    """The apex score (orange) and the decoder threshold (red) over the last ``span_s`` s as
    an RGB (H, W, 3) image: drawn here with OpenCV (a few ms) instead of re-rendering
    a chart in the browser several times a second.

    Args:
        trace: (N, 3) media time s, apex score (NaN: no face), threshold.
    """
    import cv2

    width, height = size
    left, right, top, bottom = 34, 8, 24, 22
    image = np.full((height, width, 3), 255, np.uint8)  # (H, W, 3) RGB
    t_end = trace[-1, 0] if len(trace) else span_s
    y_max = max(1.0, float(np.nanmax(trace[:, 1:])) * 1.1) if len(trace) else 1.0

    def px(t: np.ndarray, v: np.ndarray) -> np.ndarray:  # (N,), (N,) -> (N, 2) int32
        x = left + (t - (t_end - span_s)) / span_s * (width - left - right)
        y = top + (1.0 - v / y_max) * (height - top - bottom)
        return np.stack([x, y], axis=1).astype(np.int32)

    grey, font = (200, 200, 200), cv2.FONT_HERSHEY_SIMPLEX
    for level in np.arange(0.0, y_max + 1e-9, 0.25 if y_max <= 1.5 else 0.5):
        (x0, y), (x1, _) = px(np.array([t_end - span_s, t_end]), np.array([level, level]))
        cv2.line(image, (x0, y), (x1, y), grey, 1)
        cv2.putText(image, f"{level:.2f}", (2, y + 4), font, 0.35, (90, 90, 90), 1, cv2.LINE_AA)
    for second in range(max(0, int(np.ceil(t_end - span_s))), int(t_end) + 1):
        (x, y), *_ = px(np.array([second]), np.array([0.0]))
        cv2.putText(
            image, f"{second}s", (x - 8, height - 6), font, 0.35, (90, 90, 90), 1, cv2.LINE_AA
        )
    for x, text, colour in (
        (left, "apex score", (245, 130, 20)),
        (left + 110, "threshold", (220, 30, 30)),
    ):
        cv2.line(image, (x, 12), (x + 18, 12), colour, 2)
        cv2.putText(image, text, (x + 24, 16), font, 0.4, (40, 40, 40), 1, cv2.LINE_AA)
    for column, colour in ((2, (220, 30, 30)), (1, (245, 130, 20))):
        values = trace[:, column]
        # NaN (no face) breaks the line: a gap is shown as a gap, never bridged.
        breaks = np.flatnonzero(np.isnan(values))
        for piece in np.split(np.arange(len(values)), breaks):
            piece = piece[~np.isnan(values[piece])]
            if len(piece) > 1:
                points = px(trace[piece, 0], values[piece])
                cv2.polylines(image, [points], False, colour, 2 if column == 1 else 1, cv2.LINE_AA)
    return image


def events_frame(rows: list[list[Any]]):
    import pandas as pd

    return pd.DataFrame(rows, columns=EVENT_COLUMNS)
