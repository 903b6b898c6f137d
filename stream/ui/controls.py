"""What the live window's keys do, and the pipeline stage that draws the HUD for the window
and the recording.

The window thread calls ``LiveControls.handle_key``; the pipeline worker runs
``LiveControls.stage()`` after the spotter. Requests that touch the worker's state (a
recalibration) are handed over and carried out by the worker, between two frames.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stream.contracts import Frame, FrameResults
from stream.live.pipeline import Stage
from stream.output.recorder import VideoRecorder
from stream.ui.hud import HudOptions, HudState, draw_hud

KEY_ESC = 27


@dataclass(frozen=True)
class WindowKey:
    """One key of the live window: the manual, ``--help`` and the window print this table."""

    keys: str  # as the manual writes it ("q / Esc")
    does: str  # the manual's line
    short: str  # the --help epilog's word
    action: str  # what LiveControls.handle_key does


WINDOW_KEYS = (
    WindowKey("q / Esc", "quit", "quit", "quit"),
    WindowKey(
        "h", "HUD on / off (rates, stage latency, face box, score trace, events)", "HUD", "hud"
    ),
    WindowKey("l", "landmarks, ROI squares and flow arrows on / off", "landmarks", "landmarks"),
    WindowKey("p", "privacy sticker on / off", "privacy", "privacy"),
    WindowKey(
        "r",
        "record start / stop (the --record path, then mexlive-DATE-TIME.mp4 files)",
        "record",
        "record",
    ),
    WindowKey(
        "c", "recalibrate the baseline (keep a neutral face for 2 s)", "recalibrate", "recalibrate"
    ),
    WindowKey("space", "pause / resume the display (analysis goes on)", "pause", "pause"),
)
_KEY_NAMES = {"esc": chr(KEY_ESC), "space": " "}
KEY_ACTIONS = {
    _KEY_NAMES.get(name.lower(), name): key.action
    for key in WINDOW_KEYS
    for name in key.keys.split(" / ")
}


def keys_manual(indent: str = "    ") -> str:
    """The key list as the manual (run_live's docstring) and the window print it."""
    return "\n".join(f"{indent}{key.keys:<10}{key.does}" for key in WINDOW_KEYS)


def keys_summary() -> str:
    """The key list in one line, for ``--help``: "q/Esc quit, h HUD, ..."."""
    return ", ".join(f"{key.keys.replace(' / ', '/')} {key.short}" for key in WINDOW_KEYS)


def timestamped_path(folder: Path, suffix: str = ".mp4", now: float | None = None) -> Path:
    """``folder/mexlive-YYYYmmdd-HHMMSS.mp4`` (a counter is added if that name exists)."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    path = folder / f"mexlive-{stamp}{suffix}"
    n = 1
    while path.exists():
        path, n = folder / f"mexlive-{stamp}-{n}{suffix}", n + 1
    return path


class Recording:
    """Start/stop recording of the annotated frames at run time.

    Args:
        path: the first recording's file (``--record``), started at once; None: not recording
            until ``toggle``.
        fps: the recorder's nominal rate.
        folder: where ``toggle`` puts timestamped files (default: ``path``'s folder, or ".").
    """

    def __init__(self, path: str | Path | None, fps: float, folder: str | Path | None = None):
        self.fps = fps
        self.folder = Path(folder) if folder else (Path(path).parent if path else Path("."))
        self.suffix = (Path(path).suffix or ".mp4") if path else ".mp4"
        self._lock = threading.Lock()
        self._recorder: VideoRecorder | None = None
        self.paths: list[Path] = []
        if path:
            self._start(Path(path))

    @property
    def active(self) -> bool:
        return self._recorder is not None

    def _start(self, path: Path) -> None:
        recorder = VideoRecorder(path, fps=self.fps)  # MexliveError for a missing folder
        with self._lock:
            self._recorder = recorder
        self.paths.append(path)

    def toggle(self) -> Path | None:
        """Stop the running recording, or start a new timestamped one. Returns its path."""
        if self.active:
            return self.stop()
        path = timestamped_path(self.folder, self.suffix)
        self._start(path)
        return path

    def write(self, image: np.ndarray, pts_s: float | None) -> None:
        with self._lock:
            if self._recorder is not None:
                self._recorder.write(image, pts_s)

    def stop(self) -> Path | None:
        with self._lock:
            recorder, self._recorder = self._recorder, None
        if recorder is None:
            return None
        recorder.close()  # the encoder flush happens outside the lock: the worker goes on
        return recorder.path


class LiveControls:
    """The window's toggles and requests, and the worker stage that acts on them.

    Args:
        hud_state: fed by the stage, drawn with ``options``.
        options: the HUD toggles (shared with whoever draws).
        recording: run-time recording of the annotated frames.
        recalibrate: called in the worker when ``c`` was pressed (the spotter's
            ``recalibrate``); None: no spotter.
        show: called with each annotated frame (the window's LatestFrame.put); None: none.
        say: where key effects are reported to the person (stderr lines).
        privacy_available: a privacy sticker can be drawn; without one ``p`` still flips
            ``privacy_wanted`` but the HUD says "unavailable".
    """

    def __init__(
        self,
        hud_state: HudState,
        options: HudOptions,
        recording: Recording,
        recalibrate: Callable[[], None] | None = None,
        show: Callable[[np.ndarray], None] | None = None,
        say: Callable[[str], None] | None = None,
        privacy_available: bool = False,
    ) -> None:
        self.hud_state = hud_state
        self.options = options
        self.recording = recording
        self.recalibrate = recalibrate
        self.show = show
        self.say = say or (lambda text: None)
        self.privacy_wanted = options.privacy == "on"
        self.privacy_available = privacy_available
        self.options.privacy = self.privacy_state
        self.paused = False
        self._recalibrate_pending = threading.Event()
        self._canvas: np.ndarray | None = None
        self.options.recording = recording.active

    def handle_key(self, key: int) -> bool:
        """Act on one key code from ``cv2.waitKey``. Returns True when the window should close."""
        action = KEY_ACTIONS.get(chr(key)) if 0 <= key < 256 else None
        if action == "quit":
            return True
        if action == "hud":
            self.options.hud = not self.options.hud
        elif action == "landmarks":
            self.options.landmarks = not self.options.landmarks
        elif action == "privacy":
            self.privacy_wanted = not self.privacy_wanted
            self.options.privacy = self.privacy_state
            self.say(f"privacy sticker: {self.options.privacy}")
        elif action == "record":
            path = self.recording.toggle()
            self.options.recording = self.recording.active
            self.say(f"recording {'to' if self.recording.active else 'saved:'} {path}")
        elif action == "recalibrate" and self.recalibrate is not None:
            self._recalibrate_pending.set()
            self.say("recalibrating the baseline: keep a neutral face")
        elif action == "pause":
            self.paused = not self.paused
        return False

    @property
    def privacy_state(self) -> str:
        if not self.privacy_available:
            return "unavailable"
        return "on" if self.privacy_wanted else "off"

    def stage(self) -> Stage:
        return Stage("hud", self._annotate)

    def _annotate(self, frame: Frame, results: FrameResults) -> None:
        if self._recalibrate_pending.is_set() and self.recalibrate is not None:
            self._recalibrate_pending.clear()
            self.recalibrate()
        self.hud_state.observe(frame, results)
        if self.show is None and not self.recording.active:
            return
        if self._canvas is None or self._canvas.shape != frame.image.shape:
            self._canvas = np.empty_like(frame.image)
        np.copyto(self._canvas, frame.image)  # the ring owns frame.image: draw on a copy
        draw_hud(self._canvas, results, self.hud_state, self.options)
        self.recording.write(self._canvas, frame.pts_s)
        if self.show is not None:
            self.show(self._canvas)
