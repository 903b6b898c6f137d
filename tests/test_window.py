"""The live OpenCV window under a real X server (Xvfb): it opens, and draws the analysis
(landmarks, ROI squares, flow) on the face. Skipped where Debian's xvfb is not installed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow


@pytest.fixture
def xvfb():
    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb not installed (apt-get install xvfb)")
    display = f":{90 + os.getpid() % 9}"
    server = subprocess.Popen(["Xvfb", display, "-screen", "0", "1024x768x24", "-nolisten", "tcp"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
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


def test_window_draws_the_analysis(xvfb, tmp_path):
    from PIL import ImageGrab

    env = {**os.environ, "DISPLAY": xvfb}
    run = subprocess.Popen(
        [sys.executable, str(REPO / "run_live.py"), "--source", "synthetic:2", "--duration", "15",
         "--events", str(tmp_path / "e.jsonl")],
        env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        shot = None
        for _ in range(120):  # the window appears once the models are loaded
            time.sleep(0.5)
            shot = np.asarray(ImageGrab.grab(xdisplay=xvfb).convert("RGB"))
            roi_yellow = (shot[..., 0] > 200) & (shot[..., 1] > 180) & (shot[..., 2] < 60)
            if roi_yellow.sum() > 200:
                break
        if shot is None or roi_yellow.sum() <= 200:
            run.terminate()
            _, err = run.communicate(timeout=20)
            pytest.fail(f"no ROI squares on screen; mexlive said:\n{err[-2000:]}")
        ys, xs = np.nonzero(roi_yellow)
        # The squares sit on the face: a compact cluster, not spread over the screen.
        assert xs.max() - xs.min() < 400 and ys.max() - ys.min() < 400
    finally:
        run.terminate()
        _, err = run.communicate(timeout=20)
    assert "Traceback" not in err
