"""``mexlive inspect``: the table, the PNG, and bad input (one line, exit 2)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from engines.models.spotter import Spotter, SpotterConfig
from engines.weights import save_spotter
from stream.app.cli import main as mexlive_main
from stream.app.inspect import main
from stream.face.features import feature_names
from stream.synthetic.animator import FaceAnimator, SyntheticConfig, write_video
from stream.synthetic.writers import Y4MWriter

CLIP = SyntheticConfig(
    width=320,
    height=240,
    face_height_px=120,
    seed=3,
    micro_per_min=20,
    macro_per_min=6,
    lead_in_s=1.0,
)  # 8 s with one micro and one macro (and blinks)


def tiny_weights(folder: Path, width: int) -> Path:
    """Untrained spotter weights with their manifest: the learned panel's code path without
    depending on the shipped weights' layout."""
    torch.manual_seed(0)
    model = Spotter(SpotterConfig(n_features=width, d_model=16, n_layers=1)).eval()
    path = folder / "spotter.pt"
    sha = save_spotter(model, path, [f"f{i}" for i in range(width)])
    (folder / "manifest.json").write_text(json.dumps({"file": path.name, "sha256": sha}))
    return path


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> tuple[Path, Path, Path]:
    """(video, truth CSV, weights) of a synthetic clip whose truth holds a micro and a macro."""
    folder = tmp_path_factory.mktemp("inspect")
    video = write_video(folder / "clip.mp4", FaceAnimator(CLIP), n_frames=240)
    weights_dir = folder / "weights"
    weights_dir.mkdir()
    return video, video.with_suffix(".csv"), tiny_weights(weights_dir, len(feature_names()))


@pytest.mark.slow
def test_inspect_prints_the_events_and_draws_the_png(clip, tmp_path, capsys):
    video, truth, weights = clip
    bad_truth = tmp_path / "truth.csv"
    lines = truth.read_text().splitlines()
    bad_truth.write_text("\n".join([*lines[:2], "12,x,20,micro,positive,,1.0,", *lines[2:]]))
    png = tmp_path / "clip.png"
    args = [str(video), "--truth", str(bad_truth), "--plot", str(png), "--weights", str(weights)]
    assert mexlive_main(["inspect", *args, "--no-progress"]) == 0
    out, err = capsys.readouterr()
    # the bad row is named by its line and left out; the plot is still made
    assert f"{bad_truth}: line 3: skipped" in err
    image = cv2.imread(str(png))
    assert image is not None and image.shape[0] > 400 and image.shape[1] > 800
    assert image.std() > 10  # drawn, not a blank canvas
    # one block per spotter, a row per event announced in its header
    for name in ("learned", "classic"):
        block = re.search(rf"^{name}: (\d+) event\(s\)\n.*\n((?:  +\d+ .*\n?)*)", out, re.M)
        assert block is not None, out
        rows = [r for r in block.group(2).splitlines() if r.strip()]
        assert len(rows) == int(block.group(1))
        assert all(re.match(r"\s+\d+\s+\d+\s+\d+\s+(micro|macro)\s", r) for r in rows)
    # the classic finds the synthetic micro-expression and names the truth row it matches
    truth_micro = next(line for line in lines[1:] if ",micro," in line).split(",")
    assert f"{truth_micro[0]}-{truth_micro[2]} micro {truth_micro[4]}" in out


def grey_video(path: Path, frames: int = 12) -> Path:
    with Y4MWriter(path, 160, 120, 30.0) as sink:
        for _ in range(frames):
            sink.write(np.full((120, 160, 3), 128, np.uint8))
    return path


def bad_cases(tmp: Path, clip: tuple[Path, Path, Path]) -> dict[str, tuple[list[str], str]]:
    video, truth, _ = clip
    undecodable = tmp / "broken.mp4"
    undecodable.write_bytes(b"\x00\x01 not a video" * 50)
    no_rows = tmp / "bad.csv"
    no_rows.write_text(truth.read_text().splitlines()[0] + "\nx,1,2,micro,positive,,1.0,\n")
    narrow = tmp / "narrow"
    narrow.mkdir()
    weights = str(tiny_weights(narrow, 7))
    return {
        # (arguments, text the one error line must hold)
        "weights of another width": (
            [str(video), "--spotter", "learned", "--weights", weights],
            "take 7 features",
        ),
        "missing video": ([str(tmp / "nope.mp4")], "nope.mp4: no such video file"),
        "undecodable video": ([str(undecodable)], "broken.mp4"),
        "no face": ([str(grey_video(tmp / "grey.y4m"))], "no face found in any of its 12"),
        "no usable truth row": ([str(video), "--truth", str(no_rows)], "none of its 1 row"),
        "unknown spotter": ([str(video), "--spotter", "learned,magic"], "--spotter takes"),
        "plot folder missing": ([str(video), "--plot", str(tmp / "x" / "p.png")], "does not exist"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "missing video",  # a typo in the path
        "undecodable video",  # bytes that are not a video
        "no face",  # nothing to featurize
        "no usable truth row",  # the truth CSV has rows, none of them usable
        "unknown spotter",  # --spotter takes learned and classic only
        "plot folder missing",  # found before minutes of featurizing
        "weights of another width",  # the only spotter asked for cannot run: before featurizing
    ],
)
def test_bad_input_is_one_line_and_exit_2(case, clip, tmp_path, capsys):
    args, message = bad_cases(tmp_path, clip)[case]
    assert main([*args, "--no-progress"]) == 2
    out, err = capsys.readouterr()
    errors = [line for line in err.splitlines() if "error:" in line]
    assert out == "" and len(errors) == 1 and "Traceback" not in err
    assert errors[0].startswith("mexlive inspect: error:") and message in errors[0]


@pytest.mark.slow
def test_weights_that_do_not_fit_leave_their_spotter_out(clip, tmp_path, capsys):
    video, _, _ = clip
    narrow = tmp_path / "narrow"
    narrow.mkdir()
    weights = str(tiny_weights(narrow, 7))
    # with the classic beside it: a warning, and the classic's table
    assert main([str(video), "--weights", weights, "--no-progress"]) == 0
    out, err = capsys.readouterr()
    assert "warning: learned spotter left out" in err and "take 7 features" in err
    assert re.search(r"^classic: \d+ event", out, re.M) and "learned:" not in out


def test_a_cut_video_is_inspected_to_its_end_with_a_warning(fixtures_dir, tmp_path, capsys):
    data = (fixtures_dir / "videos" / "tpsmm_driving.mp4").read_bytes()  # index at the front
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    assert main([str(cut), "--spotter", "classic", "--no-progress"]) == 0
    out, err = capsys.readouterr()
    assert re.search(r"cut\.mp4: \d+ frames at", out)
    warnings = [line for line in err.splitlines() if line.startswith("mexlive inspect: warning:")]
    assert len(warnings) == 1 and "ends early" in warnings[0], err
