"""stream.datasets.real: injected and plain real-video feature files, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from engines.train.data import load_clip
from stream.capture.sources import AVSource
from stream.datasets.real import injection_config, main, make_real_set, resolve_video
from stream.errors import MexliveError
from stream.face.features import feature_names
from stream.synthetic.placement import windows
from stream.synthetic.writers import H264Writer
from tests.helpers import fixtures_root

VIDEO = "vr_2.mp4"  # 125 frames at 25 fps, a talking face tracked throughout
SECONDS = 4.0  # 100 frames: room for 1-2 events


@pytest.fixture(scope="module")
def video() -> Path:
    root = fixtures_root()
    if root is None:
        pytest.skip("face fixtures not found (set MEXLIVE_FIXTURES or provide ../shared/fixtures)")
    return root / "videos" / VIDEO


@pytest.fixture(scope="module")
def files(video: Path, tmp_path_factory) -> tuple[Path, Path]:
    """(injected seed 0, plain) for the first SECONDS of the video, in this process."""
    root = tmp_path_factory.mktemp("real")
    kwargs = {"max_seconds": SECONDS, "workers": 1, "progress": False}
    (injected,) = make_real_set(root / "injected", [str(video)], seeds=[0], **kwargs)
    (plain,) = make_real_set(root / "plain", [VIDEO], plain=True, **kwargs)
    return injected, plain


def _source_pts(video: Path, n: int) -> np.ndarray:
    pts = []
    with AVSource(video) as source:
        while len(pts) < n and (frame := source.read()) is not None:
            pts.append(frame.pts_s)
    return np.array(pts)  # (n,)


@pytest.mark.slow
def test_injected_file_loads_with_its_truth(files, video: Path) -> None:
    injected, _ = files
    assert injected.name == "vr_2_s0.npz" and not injected.with_suffix(".npz.part").exists()
    clip = load_clip(injected, feature_names())
    n = round(SECONDS * 25)
    assert clip.identity == VIDEO and clip.seed == 0 and clip.fps == 25.0 and clip.length == n
    assert clip.valid.float().mean() > 0.9
    # The face is tracked on every frame here, so the placement alone says what was injected.
    config = injection_config(0)
    frames = ((i, None, np.zeros((68, 2))) for i in range(n))
    placed = list(windows(frames, config, 25.0))
    assert len(clip.truth) == len(placed) >= 1
    for truth, window in zip(clip.truth, placed, strict=True):
        assert (truth.onset, truth.apex, truth.offset) == (window.onset, window.apex, window.offset)
        assert 0 < truth.onset < truth.apex < truth.offset < n  # inside the video
        assert truth.kind == "micro" and truth.emotion in ("negative", "positive", "surprise")
    with np.load(injected) as data:
        np.testing.assert_allclose(data["pts_s"], _source_pts(video, n))  # its own timestamps
        settings = json.loads(str(data["synthetic"]))
        assert bool(data["h264"])
    assert settings["background"] == "real" and settings["injected"] is True
    assert settings["amplitude_px"] == [0.5, 5.0] and settings["spacing_range_s"] == [1.8, 4.0]
    assert settings["max_seconds"] == SECONDS


@pytest.mark.slow
def test_plain_file_has_no_truth(files) -> None:
    injected, plain = files
    assert plain.name == "vr_2_plain.npz"
    clip = load_clip(plain, feature_names())
    assert clip.truth == [] and clip.blinks == 0 and clip.seed == -1
    assert clip.identity == VIDEO and clip.length == load_clip(injected).length
    with np.load(plain) as data:
        assert json.loads(str(data["synthetic"]))["injected"] is False
    # Not the injected file's features before its first event: x264 looks ahead (B-frames,
    # mb-tree), so an event changes the encoding of the frames before it too.
    with np.load(plain) as data, np.load(injected) as other:
        np.testing.assert_array_equal(data["pts_s"], other["pts_s"])


def test_seeds_vary_the_injections() -> None:
    frames = [(i, None, np.zeros((68, 2))) for i in range(30 * 60)]  # a minute at 30 fps
    onsets = [[w.onset for w in windows(iter(frames), injection_config(s), 30.0)] for s in (0, 1)]
    assert onsets[0] != onsets[1]
    gaps = np.diff(onsets[0]) / 30.0  # (K - 1,) s
    assert gaps.min() >= 1.8 - 1 / 30 and gaps.max() <= 4.0 + 1 / 30 and gaps.std() > 0.2
    mixed = list(windows(iter(frames), injection_config(0, macro_fraction=0.5), 30.0))
    assert {w.kind for w in mixed} == {"micro", "macro"}


def _write_video(path: Path, frames: int, size: int = 64) -> Path:
    with H264Writer(path, size, size, 25.0) as sink:
        for _ in range(frames):
            sink.write(np.full((size, size, 3), 128, np.uint8))
    return path


def _one_line_error(capsys, argv: list[str]) -> str:
    assert main([*argv, "--workers", "1", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    return err


def test_too_short_video_is_one_line(tmp_path: Path, capsys) -> None:
    short = _write_video(tmp_path / "short.mp4", 10)  # 0.4 s
    err = _one_line_error(capsys, [str(tmp_path / "out"), "--videos", str(short)])
    assert "short.mp4" in err and "too short" in err and "10 frames (0.40 s" in err
    assert not (tmp_path / "out").exists()  # checked before any work
    # --max-seconds can make a long enough video too short, too.
    long = _write_video(tmp_path / "long.mp4", 120)
    err = _one_line_error(
        capsys, [str(tmp_path / "out"), "--videos", str(long), "--max-seconds", "1"]
    )
    assert "too short" in err and "25 frames" in err


def test_bad_videos_are_one_line(tmp_path: Path, capsys) -> None:
    err = _one_line_error(capsys, [str(tmp_path), "--videos", "nobody.mp4"])
    assert "nobody.mp4" in err
    if fixtures_root() is not None:
        assert VIDEO in err  # the known names are listed
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    err = _one_line_error(capsys, [str(tmp_path), "--videos", str(text)])
    assert "notes.mp4" in err and "not a video" in err
    blank = _write_video(tmp_path / "blank.mp4", 100, size=96)  # 4 s, no face
    err = _one_line_error(capsys, [str(tmp_path / "out"), "--videos", str(blank)])
    assert "blank.mp4" in err and "no face" in err
    err = _one_line_error(capsys, [str(tmp_path / "out"), "--videos", str(blank), "--plain"])
    assert "blank.mp4" in err and "no face" in err
    assert not list((tmp_path / "out").glob("*.npz*"))
    for argv in (["--seeds", "a"], ["--seeds", "-1"], ["--macro-fraction", "2"]):
        _one_line_error(capsys, [str(tmp_path / "out"), "--videos", str(blank), *argv])


def test_resolve_video(video: Path) -> None:
    assert resolve_video(VIDEO) == video
    assert resolve_video(str(video)) == video.resolve()
    with pytest.raises(MexliveError, match="not found"):
        resolve_video("nobody.mp4")
