"""open_source parsing and the bad inputs a person can give it."""

from __future__ import annotations

import socket
import time

import cv2
import numpy as np
import pytest

from stream.capture.sources import AVSource, SyntheticSource, WebcamSource, open_source
from stream.errors import SourceError


@pytest.mark.parametrize(
    "spec, kind, live",
    [
        ("0", WebcamSource, True),  # camera index
        ("/dev/video3", WebcamSource, True),  # V4L2 device path
        ("synthetic", SyntheticSource, False),  # default seed
        ("synthetic:7", SyntheticSource, False),  # explicit seed
        ("rtsp://127.0.0.1/cam", AVSource, True),  # network camera: live
        ("http://127.0.0.1/clip.mp4", AVSource, False),  # http file: replayed, loses nothing
        ("clip.mp4", AVSource, False),  # a path (opened later)
        ("file:///tmp/clip.mp4", AVSource, False),  # file URL
    ],
)
def test_open_source_picks_the_right_kind(spec, kind, live):
    source = open_source(spec)
    assert isinstance(source, kind) and source.live is live


def test_synthetic_seed_and_fps_are_parsed():
    source = open_source("synthetic:7", fps=25)
    assert source.config.seed == 7 and source.config.fps == 25.0


@pytest.mark.parametrize(
    "spec, message",
    [
        ("", "empty --source"),  # nothing typed
        ("synthetic:abc", "whole number"),  # bad seed
        ("ftp://host/x.mp4", "unsupported URL scheme"),  # scheme PyAV is not asked to try
    ],
)
def test_nonsense_specs_fail_at_parse(spec, message):
    with pytest.raises(SourceError, match=message):
        open_source(spec)


def test_synthetic_fps_out_of_range():
    with pytest.raises(SourceError, match="out of range"):
        open_source("synthetic", fps=0.5)


def test_a_paced_synthetic_source_counts_the_frames_it_gives_late():
    # It waits for the pipeline instead of dropping, so lateness is what it reports.
    source = open_source("synthetic", fps=10)  # 100 ms apart: a loaded machine is not late
    with source:
        source.read()  # frame 0, due at open
        assert source.counters() == {"late": 0, "max_lag_ms": 0}
        time.sleep(0.35)  # frame 1 was due 100 ms after open: now 250 ms late or more
        source.read()
        late = source.counters()
    assert late["late"] == 1 and late["max_lag_ms"] >= 240
    assert SyntheticSource(realtime=False).counters() == {}  # unpaced: never late


def open_error(spec: str, **kwargs) -> str:
    with pytest.raises(SourceError) as info:
        open_source(spec, **kwargs).open()
    return str(info.value)


def test_missing_file(tmp_path):
    assert "no such file" in open_error(str(tmp_path / "nope.mp4"))


def test_directory(tmp_path):
    assert "directory" in open_error(str(tmp_path))


def test_not_a_video(tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("this is not a video\n" * 50)
    assert "cannot open" in open_error(str(path))


def test_audio_only_file(tmp_path):
    import av

    path = tmp_path / "voice.wav"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(
            np.zeros((1, 800), np.int16), format="s16", layout="mono"
        )
        frame.sample_rate = 8000
        for packet in [*stream.encode(frame), *stream.encode()]:
            out.mux(packet)
    assert "no video stream" in open_error(str(path))


def test_unsupported_codec(tmp_path):
    # A real MJPEG AVI whose FourCC is renamed to one no decoder knows.
    mjpg = tmp_path / "mjpg.avi"
    writer = cv2.VideoWriter(str(mjpg), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for i in range(5):
        writer.write(np.full((48, 64, 3), i * 20, np.uint8))
    writer.release()
    odd = tmp_path / "odd.avi"
    odd.write_bytes(mjpg.read_bytes().replace(b"MJPG", b"QQQQ").replace(b"mjpg", b"qqqq"))
    assert "unsupported video codec" in open_error(str(odd))


def test_camera_that_does_not_open():
    assert "camera 97 could not be opened" in open_error("97")


def test_url_that_does_not_answer():
    # A local server that accepts connections and never says a word.
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(4)
        port = server.getsockname()[1]
        message = open_error(f"http://127.0.0.1:{port}/live.mp4", open_timeout_s=0.5)
    assert "no answer within 0.5 s" in message


def test_url_that_refuses():
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert "cannot open" in open_error(f"rtsp://127.0.0.1:{port}/cam", open_timeout_s=1.0)


def test_truncated_file_ends_with_a_warning(fixtures_dir, tmp_path):
    data = (fixtures_dir / "videos" / "tpsmm_driving.mp4").read_bytes()  # index at the front
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    frames = 0
    with AVSource(cut) as source:
        while source.read() is not None:  # every frame there, then a normal end
            frames += 1
        assert source.ended_early is not None and "ends early" in source.ended_early
    assert 0 < frames < 169


@pytest.mark.parametrize("threads", [1, 2])
def test_a_decoder_on_fewer_threads_gives_the_same_frames(fixtures_dir, threads):
    """mexlive batch decodes on one thread per worker: the frames must be FFmpeg's own."""
    import numpy as np

    video = fixtures_dir / "videos" / "lp_d0.mp4"

    def frames(decode_threads: int) -> list:
        with AVSource(video, decode_threads=decode_threads) as source:
            assert source._container.streams.video[0].codec_context.thread_count == decode_threads
            return [(f.image, f.pts_s, f.index) for f in iter(source.read, None)]

    auto, few = frames(0), frames(threads)
    assert len(few) == len(auto) == 78
    for (a, *when_a), (b, *when_b) in zip(auto, few, strict=True):
        assert when_a == when_b and np.array_equal(a, b)
