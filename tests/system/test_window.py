"""The live OpenCV window under a real X server (Xvfb): it opens, draws the analysis
(landmarks, ROI squares, flow) and the HUD on the face, and its keys work (pressed with
xdotool). Skipped where Debian's xvfb (or, for the keys, xdotool) is not installed.

``MEXLIVE_UPDATE_DOCS=1`` also saves the screenshot as docs/window.png (the README's)."""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import REPO

pytestmark = pytest.mark.slow


DISPLAYS = itertools.count(100 + os.getpid() % 50 * 20)  # a run's own numbers, one per test


@pytest.fixture
def xvfb():
    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb not installed (apt-get install xvfb)")
    # A display number no test here used before (the window test failed, rarely, on the number
    # the previous test's server had just given up: a black screen while mexlive drew its window
    # for 88 s), and no other server holds.
    display = next(f":{n}" for n in DISPLAYS if not Path(f"/tmp/.X{n}-lock").exists())
    server = subprocess.Popen(
        ["Xvfb", display, "-screen", "0", "1024x768x24", "-nolisten", "tcp"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    from PIL import ImageGrab

    for _ in range(100):  # wait until the server answers (slow under load)
        if server.poll() is not None:
            pytest.skip("Xvfb did not start")
        try:
            ImageGrab.grab(xdisplay=display)
            break
        except OSError:
            time.sleep(0.1)
    else:
        pytest.skip("Xvfb did not answer")
    yield display
    server.terminate()
    server.wait(5)


FRAME_W, FRAME_H = 640, 480  # the synthetic source's frame size


def grab(display: str) -> np.ndarray:
    from PIL import ImageGrab

    return np.asarray(ImageGrab.grab(xdisplay=display).convert("RGB"))  # (H, W, 3) RGB


def roi_yellow(shot: np.ndarray) -> np.ndarray:
    return (shot[..., 0] > 200) & (shot[..., 1] > 180) & (shot[..., 2] < 60)


def magenta(shot: np.ndarray) -> np.ndarray:  # the HUD's face box
    return (shot[..., 0] > 200) & (shot[..., 1] < 60) & (shot[..., 2] > 200)


def frame_origin(shot: np.ndarray) -> tuple[int, int]:
    """Where the 640×480 frame sits on the screen (below Qt's toolbar): the synthetic face's
    first frame matched against the screenshot (normalised, so light drift does not matter)."""
    import cv2

    from stream.synthetic.animator import FaceAnimator, SyntheticConfig

    frame = FaceAnimator(SyntheticConfig(seed=2, noise_sigma=0.0)).render(0)
    template = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    screen = cv2.cvtColor(np.ascontiguousarray(shot), cv2.COLOR_RGB2GRAY)
    scores = cv2.matchTemplate(screen, template, cv2.TM_CCOEFF_NORMED)
    _, best, _, (x, y) = cv2.minMaxLoc(scores)
    assert best > 0.5, f"the frame is not on the screen (best match {best:.2f})"
    return x, y


def expected_face_box() -> tuple[int, int, int, int]:
    """The face box draw_face_box draws around the synthetic face's true landmarks."""
    from stream.synthetic.animator import FaceAnimator, SyntheticConfig
    from stream.ui.hud import draw_face_box

    canvas = np.zeros((FRAME_H, FRAME_W, 3), np.uint8)
    draw_face_box(canvas, FaceAnimator(SyntheticConfig(seed=2)).landmarks_at(0))
    ys, xs = np.nonzero(canvas.any(axis=2))
    return xs.min(), ys.min(), xs.max(), ys.max()


def _spawn(display: str, cwd: Path, log: Path, seconds: int) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            str(REPO / "run_live.py"),
            "--source",
            "synthetic:2",
            "--duration",
            str(seconds),
            "--events",
            str(log),
        ],
        env={**os.environ, "DISPLAY": display},
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def start_mexlive(display: str, cwd: Path, log: Path, seconds: int) -> subprocess.Popen:
    """mexlive on ``display``, once its window is on the screen (anything not black).

    Now and then under load (2 of 4 runs beside a busy loop on this 2-core machine, and once in
    CI), the window never reached the Xvfb screen: the screen stayed black for the whole run
    while mexlive analysed every frame, drew into its window and exited 0 (cause not found: not
    the display number, not the fonts, not a full pipe; not reproduced with stdout to a file in
    nine runs). Such a run — one that ends, or stays black for 90 s — is stopped and started
    again, twice at most, with a warning in the test summary, so the checks below test the
    window rather than that race; a third black run fails with what mexlive said."""
    attempts = 3
    for attempt in range(attempts):
        log.unlink(missing_ok=True)
        run = _spawn(display, cwd, log, seconds)
        deadline = time.monotonic() + 90  # model loading takes up to a minute under load
        while time.monotonic() < deadline and run.poll() is None:
            if grab(display).any():
                return run
            time.sleep(0.3)
        if attempt == attempts - 1:
            return run  # wait_for then fails with what mexlive said
        if run.poll() is None:
            run.terminate()
        _, err = run.communicate(timeout=20)
        if run.returncode not in (0, -15):  # a crash is a failure, not the race
            pytest.fail(f"mexlive exited {run.returncode} before drawing; it said:\n{err[-2000:]}")
        warnings.warn(
            f"mexlive's window never reached the Xvfb screen (run {attempt + 1}); started again",
            stacklevel=2,
        )
    raise AssertionError("unreachable")


def wait_for(display: str, run: subprocess.Popen, check, what: str, timeout_s: float = 20.0):
    """Poll screenshots until ``check(shot)``; fail with mexlive's stderr otherwise."""
    deadline = time.monotonic() + timeout_s
    shot = None
    while time.monotonic() < deadline:
        shot = grab(display)
        if check(shot):
            return shot
        if run.poll() is not None:
            break
        time.sleep(0.3)
    windows = ""  # which windows the server holds, to tell "never mapped" from "drawn black"
    if shutil.which("xdotool"):
        windows = xdotool(display, "search", "--onlyvisible", "--name", ".+")
    run.terminate()
    _, err = run.communicate(timeout=20)
    if shot is not None:  # what the screen showed instead, for the person reading the failure
        from PIL import Image

        Image.fromarray(shot).save(Path(run.args[-1]).parent / "last_screen.png")
    pytest.fail(
        f"{what} did not happen (screen: last_screen.png; visible windows: {windows.split()}); "
        f"mexlive said:\n{err[-2000:]}"
    )


def test_window_draws_the_analysis_and_the_hud(xvfb, tmp_path):
    run = start_mexlive(xvfb, REPO, tmp_path / "e.jsonl", 40)
    try:
        # The window appears once the models are loaded (up to a minute under load).
        shot = wait_for(
            xvfb,
            run,
            lambda s: roi_yellow(s).sum() > 200 and magenta(s).sum() > 200,
            "the analysed window",
            timeout_s=90,
        )
        ys, xs = np.nonzero(roi_yellow(shot))
        # The squares sit on the face: a compact cluster, not spread over the screen.
        assert xs.max() - xs.min() < 400 and ys.max() - ys.min() < 400
        ox, oy = frame_origin(shot)

        def trace_drawn(shot: np.ndarray) -> bool:  # the score line spans the trace panel
            trace = shot[oy + FRAME_H - 76 : oy + FRAME_H - 20, ox : ox + FRAME_W]
            columns = (trace.min(axis=2) > 200).any(axis=0)  # (640,) a white pixel in each
            return columns[10:-10].mean() > 0.9

        # The first scores come once the flow window holds a reference span (~1 s of face).
        shot = wait_for(xvfb, run, trace_drawn, "the apex-score trace", timeout_s=60)
        frame = shot[oy : oy + FRAME_H, ox : ox + FRAME_W]  # (480, 640, 3) what the window shows
        # The face box is where the synthetic face is (its true landmarks), within a few px:
        # the box follows dlib's landmarks, which sit within ~3 px of the truth.
        ys, xs = np.nonzero(magenta(frame))
        box = np.array([xs.min(), ys.min(), xs.max(), ys.max()])
        assert np.abs(box - np.array(expected_face_box())).max() <= 12, box
        # The stats panel (top left): dark, with white text in it.
        panel = frame[:70, :260].astype(int)
        white = (panel.min(axis=2) > 220).sum()
        assert white > 150 and np.median(panel) < 110, (white, np.median(panel))
        if os.environ.get("MEXLIVE_UPDATE_DOCS") == "1":
            save_screenshot(xvfb, tmp_path / "e.jsonl", (ox, oy))
    finally:
        run.terminate()
        _, err = run.communicate(timeout=20)
    assert "Traceback" not in err


def save_screenshot(display: str, log: Path, origin: tuple[int, int]) -> None:
    """docs/window.png: the window (toolbar and frame) once an event is listed, in 256
    colours to keep it small."""
    from PIL import Image

    deadline = time.monotonic() + 60
    while '"type":"expression"' not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.5)
    time.sleep(1.0)  # the trace shows the bump
    ox, oy = origin
    window = grab(display)[max(oy - 40, 0) : oy + FRAME_H, ox : ox + FRAME_W]
    (REPO / "docs").mkdir(exist_ok=True)
    image = Image.fromarray(np.ascontiguousarray(window)).quantize(256, dither=Image.Dither.NONE)
    image.save(REPO / "docs" / "window.png", optimize=True)


def xdotool(display: str, *args: str) -> str:
    out = subprocess.run(
        ["xdotool", *args],
        env={**os.environ, "DISPLAY": display},
        capture_output=True,
        text=True,
        timeout=10,
    )
    return out.stdout


def test_window_keys(xvfb, tmp_path):
    if shutil.which("xdotool") is None:
        pytest.skip("xdotool not installed (apt-get install xdotool): it presses the keys")
    import av

    log = tmp_path / "e.jsonl"
    run = start_mexlive(xvfb, tmp_path, log, 120)  # cwd: the r key's recordings land there

    def press(key: str) -> None:
        xdotool(xvfb, "key", key)

    def frame_of(shot: np.ndarray) -> np.ndarray:
        return shot[oy : oy + FRAME_H, ox : ox + FRAME_W]

    def rec_dot(shot: np.ndarray) -> int:
        corner = frame_of(shot)[:30, FRAME_W - 70 :].astype(int)
        return int(((corner[..., 0] > 200) & (corner[..., 1] < 60) & (corner[..., 2] < 60)).sum())

    def calibrations() -> int:
        return log.read_text().count('"status":"calibrated"') if log.exists() else 0

    try:
        shot = wait_for(xvfb, run, lambda s: magenta(s).sum() > 200, "the HUD", timeout_s=90)
        ox, oy = frame_origin(shot)
        window = xdotool(xvfb, "search", "--name", "^mexlive$").split()
        assert window, "no window named mexlive"
        xdotool(xvfb, "windowfocus", window[0])

        press("h")  # HUD off: no face box, no stats panel
        wait_for(xvfb, run, lambda s: magenta(frame_of(s)).sum() == 0, "h hiding the HUD")
        press("h")
        wait_for(xvfb, run, lambda s: magenta(frame_of(s)).sum() > 200, "h showing the HUD")
        press("l")  # landmarks and ROI squares off
        wait_for(xvfb, run, lambda s: roi_yellow(frame_of(s)).sum() < 20, "l hiding the ROIs")

        press("r")  # recording: the red dot, and a timestamped file in the working folder
        wait_for(xvfb, run, lambda s: rec_dot(s) > 30, "r showing the recording dot")
        time.sleep(1.5)
        press("r")
        wait_for(xvfb, run, lambda s: rec_dot(s) == 0, "r stopping the recording")
        recordings = sorted(tmp_path.glob("mexlive-*.mp4"))
        assert len(recordings) == 1
        with av.open(str(recordings[0])) as container:
            assert sum(1 for _ in container.decode(video=0)) > 3

        before = calibrations()
        assert before >= 1  # the first baseline was measured at the start
        press("c")  # recalibrate: a second "calibrated" line ~2 s of face later
        deadline = time.monotonic() + 30
        while calibrations() == before and time.monotonic() < deadline:
            time.sleep(0.3)
        assert calibrations() == before + 1

        press("space")  # paused: the display stands still while analysis goes on
        time.sleep(1.0)
        still = frame_of(grab(xvfb)).copy()
        time.sleep(1.0)
        assert np.array_equal(still, frame_of(grab(xvfb)))
        press("space")
        wait_for(xvfb, run, lambda s: not np.array_equal(still, frame_of(s)), "space resuming")

        press("p")
        press("q")
        _, err = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            run.terminate()
            run.communicate(timeout=20)
    assert run.returncode == 0, err[-2000:]
    assert "privacy sticker: unavailable" in err and "recalibrating" in err
    assert log.read_text().splitlines()[-1].count('"status":"stopped"') == 1
