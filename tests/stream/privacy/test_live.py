"""Live privacy: a known driving region found from rendered pixels, the stage's status lines,
the command line (bad sticker file, protected output)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from stream.contracts import FeatureRow, Frame, FrameResults
from stream.errors import MexliveError
from stream.face.align import FaceTracker
from stream.face.features import FeatureExtractor, feature_names
from stream.privacy.live import PrivacyCalibrator, PrivacyStage, ProtectedWriter
from stream.privacy.stickers import Sticker, StickerPlacer
from stream.synthetic.animator import FaceAnimator, SyntheticConfig
from stream.synthetic.au import lead_push
from tests.helpers import mexlive, read_log


def test_driving_region_moves_lead_frames_before_the_rest():
    cfg = SyntheticConfig(
        seed=3, head_motion=False, lead_region="mouth_r", lead_frames=4, micro_per_min=12
    )
    animator = FaceAnimator(cfg)
    event = next(e for e in animator.events_between(0, 900) if e.kind != "blink")
    driver = np.flatnonzero(np.any(lead_push("mouth_r", 0.0) != 0, axis=1))  # (K,)
    others = np.setdiff1d(np.arange(68), driver)

    def moved(index: int) -> np.ndarray:  # (68,) displacement from rest, px
        return np.linalg.norm(animator.expression_offsets(index), axis=1)

    assert moved(event.onset + 1)[driver].min() > 0  # the driver starts at the onset
    assert moved(event.onset + 4)[others].max() == 0  # the rest waits lead frames
    assert moved(event.onset + 5)[others].max() > 0
    apex = moved(event.apex)[driver].max()
    later = moved(event.apex + 4)[others]
    assert later.max() > 0.3 * apex  # and then moves as much


@pytest.mark.parametrize("region, frames", [("nose_bridge", 4), ("chin", 0), ("chin", 99)])
def test_bad_lead_is_refused(region, frames):
    with pytest.raises(MexliveError, match="lead"):
        SyntheticConfig(lead_region=region, lead_frames=frames)


@pytest.mark.slow
def test_calibration_finds_the_driving_region_from_pixels(tmp_path):
    """Rendered faces whose inner-left brow leads every expression by 4 frames: the live
    calibrator (alignment → ROI flow → PC) must choose that region."""
    animator = FaceAnimator(
        SyntheticConfig(
            seed=3,
            lead_region="brow_l_inner",
            lead_frames=4,
            micro_per_min=12,
            macro_per_min=4,
            blinks_per_min=6,
        )
    )
    graphs = []
    calibrator = PrivacyCalibrator(19.0, graphs.append, tmp_path / "graph", lag_frames=3)
    tracker, extractor = FaceTracker(), FeatureExtractor()
    for i in range(20 * 30):
        t_s = i / 30
        row = extractor.update(tracker.update(animator.render(i), i, round(t_s * 1e9), t_s))
        calibrator.add(FeatureRow(row.seq, row.t_mono_ns, row.values, row.valid), t_s)
    calibrator.join()  # PC runs in the calibrator's thread
    assert len(graphs) == 1
    graph = graphs[0]
    assert not graph.fallback_used
    assert graph.root == "brow_l_inner"
    saved = json.loads((tmp_path / "graph.json").read_text())
    assert saved["root"] == "brow_l_inner"
    assert (tmp_path / "graph.png").stat().st_size > 1000


def test_calibrator_measures_one_window_then_again_after_restart():
    rng = np.random.default_rng(0)
    graphs = []
    calibrator = PrivacyCalibrator(1.0, graphs.append, lag_frames=3)

    def feed(seconds: float, start: int) -> None:
        for i in range(start, start + round(seconds * 30)):
            values = rng.random(len(feature_names())).astype(np.float32)
            calibrator.add(FeatureRow(i, i, values, True), i / 30)
        calibrator.join()

    feed(3.0, 0)
    assert len(graphs) == 1  # one window, not one per second
    assert graphs[0].fallback_used  # 1 s of noise: too few frames, and it says so
    calibrator.restart()
    feed(1.5, 90)
    assert len(graphs) == 2


def test_stage_says_when_the_sticker_goes_off_and_on():
    animator = FaceAnimator(SyntheticConfig(seed=1, noise_sigma=0.0))
    lines = []
    stage = PrivacyStage(
        StickerPlacer(Sticker.design("solid"), "chin"),
        lambda status, detail, seq: lines.append((status, detail, seq)),
    )
    tracker = FaceTracker()
    blank = np.full((480, 640, 3), 80, np.uint8)
    for i, image in enumerate(
        [animator.render(0), animator.render(1), blank, blank, animator.render(4)]
    ):
        frame = Frame(i, i, i / 30, image)
        results = FrameResults(aligned=tracker.update(image, i, i, i / 30))
        stage(frame, results)
    assert [(d["on"], seq) for _, d, seq in lines] == [(True, 0), (False, 2), (True, 4)]
    assert lines[1][1]["reason"]  # why it is off
    assert stage.frames_protected == 3
    assert np.all(blank == 80)  # no face, no sticker


def test_unsupported_url_is_refused():
    with pytest.raises(MexliveError, match="cannot stream"):
        ProtectedWriter("http://example.invalid/live")


def test_cli_sticker_file_that_does_not_load(tmp_path):
    bad = tmp_path / "sticker.png"
    bad.write_text("no image")
    result = mexlive(
        "--source",
        "synthetic",
        "--headless",
        "--max-frames",
        "5",
        "--no-spotter",
        "--events",
        str(tmp_path / "e.jsonl"),
        "--privacy-sticker",
        str(bad),
    )
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("mexlive: error")]
    assert len(errors) == 1 and "cannot load sticker" in errors[0]
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_cli_writes_the_protected_stream(tmp_path):
    import av

    out, log = tmp_path / "protected.mp4", tmp_path / "e.jsonl"
    result = mexlive(
        "--source",
        "synthetic:2",
        "--no-realtime",
        "--headless",
        "--max-frames",
        "45",
        "--no-spotter",
        "--events",
        str(log),
        "--calibrate-privacy",
        "--privacy-calibration-s",
        "1",
        "--privacy-graph",
        str(tmp_path / "g"),
        "--privacy-out",
        str(out),
        "--privacy-design",
        "solid",
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    statuses = [line for line in read_log(log) if line["type"] == "status"]
    sticker = [s for s in statuses if s["status"] == "privacy_sticker"]
    assert sticker and sticker[0]["on"] is True
    calibrated = [s for s in statuses if s["status"] == "privacy_calibrated"]
    assert len(calibrated) == 1  # 1 s of a still lead-in: the fallback, and it says why
    assert calibrated[0]["fallback"] is True and calibrated[0]["reason"]
    with av.open(str(out)) as container:
        frames = [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]
    assert len(frames) == 45
    orange = np.all(np.abs(frames[10].astype(int) - (40, 150, 235)) < 35, axis=2)
    assert orange[100:300, 200:440].sum() > 100  # the solid sticker is on the face
