"""The OpenCV live window: the newest annotated frame, the display probe and the key loop.

OpenCV's GUI must run on the main thread, so the pipeline hands frames over through
`LatestFrame` (one reused buffer: the window shows the newest, the analysis never waits).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np

from stream.live.pipeline import Pipeline
from stream.ui.controls import LiveControls

WINDOW = "mexlive"


class LatestFrame:
    """The newest annotated frame for the window, copied into a reused buffer."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._image: np.ndarray | None = None
        self._fresh = False

    def put(self, image: np.ndarray) -> None:
        """Copy the frame (the HUD stage has drawn on it already)."""
        with self._lock:
            if self._image is None or self._image.shape != image.shape:
                self._image = np.empty_like(image)
            np.copyto(self._image, image)
            self._fresh = True

    def take(self) -> np.ndarray | None:
        with self._lock:
            if not self._fresh:
                return None
            self._fresh = False
            return self._image.copy()


def display_available() -> bool:
    """True if an OpenCV window can open. OpenCV's GUI aborts the process without a display,
    so a throwaway subprocess tries first."""
    if sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
        print("mexlive: no display found; running headless", file=sys.stderr)
        return False
    probe = "import cv2; cv2.namedWindow('probe'); cv2.waitKey(1); cv2.destroyAllWindows()"
    try:
        ok = (
            subprocess.run(
                [sys.executable, "-c", probe], capture_output=True, timeout=10
            ).returncode
            == 0
        )
    except (OSError, subprocess.TimeoutExpired):
        ok = False
    if not ok:
        print("mexlive: the display cannot open a window; running headless", file=sys.stderr)
    return ok


def show_window(
    pipeline: Pipeline, view: LatestFrame, controls: LiveControls, keys_help: str = ""
) -> None:
    """The window loop on the calling (main) thread until the pipeline ends or q/Esc."""
    import cv2

    # opencv-python points Qt at a font folder it does not ship; use the system's instead.
    fonts = Path("/usr/share/fonts/truetype/dejavu")
    if not Path(os.environ.get("QT_QPA_FONTDIR", "/nonexistent")).is_dir() and fonts.is_dir():
        os.environ["QT_QPA_FONTDIR"] = str(fonts)

    print(keys_help, file=sys.stderr)
    cv2.namedWindow(WINDOW, cv2.WINDOW_AUTOSIZE)  # 1:1 pixels: 1-px motion stays visible
    try:
        while not pipeline.wait(0.0):
            image = view.take()
            if image is not None and not controls.paused:
                cv2.imshow(WINDOW, image)
            key = cv2.waitKey(10)
            if key >= 0 and controls.handle_key(key & 0xFF):
                break
    finally:
        cv2.destroyWindow(WINDOW)
