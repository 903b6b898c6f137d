"""stream.datasets.identities and the data-set options: video-frame identities, faceless
input, the deformation family and the scene settings recorded in each file."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from stream.datasets.features import build_parser, main
from stream.datasets.identities import (
    check_face,
    parse_video_frame,
    resolve_identity,
)
from stream.errors import MexliveError
from stream.synthetic.animator import FaceAnimator, SyntheticConfig
from stream.synthetic.writers import H264Writer
from tests.helpers import fixtures_root


@pytest.fixture(autouse=True)
def frame_cache(tmp_path, monkeypatch) -> Path:
    """Extracted frames go to this test's folder, never the repository."""
    cache = tmp_path / "frames"
    monkeypatch.setenv("MEXLIVE_FRAME_CACHE", str(cache))
    return cache


@pytest.fixture
def grey_video(tmp_path) -> Path:
    """A second of plain grey: a video without a face."""
    path = tmp_path / "grey.mp4"
    with H264Writer(path, 160, 120, 10.0) as sink:
        for _ in range(10):
            sink.write(np.full((120, 160, 3), 128, np.uint8))
    return path


@pytest.mark.parametrize(
    ("name", "parsed"),
    [
        ("st_rd2.mp4@1.5", ("st_rd2.mp4", 1.5)),  # a fixtures video at 1.5 s
        ("/data/a@b/clip.MOV@0", ("/data/a@b/clip.MOV", 0.0)),  # the last @ splits
        ("lp_d9.jpg", None),  # a photo
        ("me@home.jpg", None),  # an @ in a photo's name is not a frame
    ],
)
def test_parse_video_frame(name: str, parsed) -> None:
    assert parse_video_frame(name) == parsed


@pytest.mark.parametrize("bad", ["st_rd2.mp4@soon", "st_rd2.mp4@-1", "st_rd2.mp4@nan"])
def test_bad_frame_times_are_errors(bad: str) -> None:
    with pytest.raises(MexliveError, match="bad video frame"):
        parse_video_frame(bad)


def test_video_frame_identity_resolves_and_renders(frame_cache: Path) -> None:
    root = fixtures_root()
    if root is None or not (root / "videos" / "st_rd2.mp4").is_file():
        pytest.skip("face fixtures not found")
    path = resolve_identity("st_rd2.mp4@1.5")
    assert Path(path).parent == frame_cache and Path(path).suffix == ".png"
    assert resolve_identity("st_rd2.mp4@1.5") == path  # cached, not decoded again
    frame = cv2.imread(path)
    assert frame is not None and frame.ndim == 3
    check_face("st_rd2.mp4@1.5", path)
    animator = FaceAnimator(SyntheticConfig(photo=path, deformation="kernel", seed=1))
    assert animator.render(60).shape == (480, 640, 3)
    with pytest.raises(MexliveError, match="no frame at 99"):
        resolve_identity("st_rd2.mp4@99")


def test_photo_without_face_is_one_clear_error(tmp_path: Path) -> None:
    grey = tmp_path / "grey.png"
    cv2.imwrite(str(grey), np.full((240, 320, 3), 128, np.uint8))
    with pytest.raises(MexliveError, match=r"no face found in .*grey\.png"):
        check_face(str(grey), resolve_identity(str(grey)))


def test_video_frame_without_face_exits_2(grey_video: Path, tmp_path: Path, capsys) -> None:
    name = f"{grey_video}@0.5"
    with pytest.raises(MexliveError, match=r"no face found in .*grey\.mp4@0\.5"):
        check_face(name, resolve_identity(name))
    out = tmp_path / "set"
    assert main([str(out), "--photos", name, "--quiet", "--workers", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "grey.mp4@0.5" in err
    assert not list(out.glob("*.npz"))


def test_bad_scene_options_exit_2(tmp_path: Path, capsys) -> None:
    assert main([str(tmp_path), "--micro-px", "3", "--quiet"]) == 2
    assert "--micro-px" in capsys.readouterr().err
    assert main([str(tmp_path), "--asymmetry", "1.5", "--quiet"]) == 2
    assert "asymmetry" in capsys.readouterr().err
    assert main([str(tmp_path), "--crf", "60", "--quiet"]) == 2
    with pytest.raises(SystemExit):  # argparse names the choices
        build_parser().parse_args([str(tmp_path), "--deformation", "affine"])


def test_help_names_the_new_options() -> None:
    text = build_parser().format_help()
    for option in ("--deformation", "--crf", "--micro-px", "--asymmetry", "--profile-jitter",
                   "--face-height", "--noise-sigma", "VIDEO@SECONDS"):  # fmt: skip
        assert option in text


@pytest.mark.slow
def test_scene_options_are_recorded(tmp_path: Path) -> None:
    out = tmp_path / "set"
    argv = [str(out), "--count", "1", "--seconds", "1", "--workers", "1", "--quiet"]
    argv += ["--deformation", "mesh", "--crf", "20", "--micro-px", "0.5,2", "--asymmetry", "0.3"]
    argv += ["--profile-jitter", "0.5", "--face-height", "160", "--noise-sigma", "1"]
    assert main(argv) == 0
    with np.load(out / "clip_0000.npz") as data:
        assert str(data["deformation"]) == "mesh" and int(data["crf"]) == 20
        assert bool(data["h264"]) and len(data["seq"]) == 30
        assert json.loads(str(data["synthetic"])) == {
            "asymmetry": 0.3,
            "deformation": "mesh",
            "face_height_px": 160.0,
            "micro_px": [0.5, 2.0],
            "noise_sigma": 1.0,
            "profile_jitter": 0.5,
        }
