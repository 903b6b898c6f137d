"""A stretch of a real video (PyAV seek to the keyframe before it) gives the very frames, indices
and timestamps a whole-file read gives them; a container without timestamps decodes from the
start and says so."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from stream.capture.sources import AVSource
from stream.capture.stretch import StretchSource, scan_video


def read_all(source) -> list[tuple[int, float | None, np.ndarray]]:
    frames = []
    with source:
        while (frame := source.read()) is not None:
            frames.append((frame.index, frame.pts_s, frame.image.copy()))
    return frames


def same(got, want) -> bool:
    return len(got) == len(want) and all(
        g[0] == w[0] and g[1] == w[1] and np.array_equal(g[2], w[2])
        for g, w in zip(got, want, strict=True)
    )


@pytest.mark.parametrize(
    "name",
    [
        "lp_d6.mp4",  # H.264, 30 fps, 1008 frames: keyframes far apart
        "st_rd2.mp4",  # MPEG-4 part 2, 25 fps
        "vr_1.mp4",  # H.264 at 22.1 fps (a rate that is not a whole number)
    ],
)
def test_a_stretch_is_the_whole_reads_frames(fixtures_dir, name):
    path = fixtures_dir / "videos" / name
    whole = read_all(AVSource(path))
    scan = scan_video(path)
    assert scan.frames == len(whole)
    assert scan.pts_s == tuple(pts for _, pts, _ in whole)
    n = scan.frames
    for first, stop in ((0, 30), (n // 2 + 1, n // 2 + 40), (n - 25, n)):
        stretch = StretchSource(path, first, stop, scan.pts_s[first])
        assert same(read_all(stretch), whole[first:stop]), (name, first)
        assert not stretch.fell_back  # an MP4 seeks


@pytest.fixture
def raw_h264(fixtures_dir, tmp_path) -> Path:
    """lp_d6's H.264 packets as an elementary stream: no container, no timestamps."""
    import av

    path = tmp_path / "raw.h264"
    with av.open(str(fixtures_dir / "videos" / "lp_d6.mp4")) as src:
        stream = src.streams.video[0]
        with av.open(str(path), "w", format="h264") as dst:
            out = dst.add_stream_from_template(stream)
            for packet in src.demux(stream):
                if packet.dts is not None:
                    packet.stream = out
                    dst.mux(packet)
    return path


def test_a_container_without_timestamps_decodes_from_the_start(raw_h264):
    scan = scan_video(raw_h264)
    assert scan.pts_s is None and scan.frames == 1008
    whole = read_all(AVSource(raw_h264))
    stretch = StretchSource(raw_h264, 500, 560, None)
    got = read_all(stretch)
    assert stretch.fell_back
    assert [g[0] for g in got] == list(range(500, 560))
    assert all(np.array_equal(g[2], w[2]) for g, w in zip(got, whole[500:560], strict=True))


def test_a_broken_file_is_a_source_error(tmp_path):
    from stream.errors import SourceError

    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video at all" * 100)
    with pytest.raises(SourceError):
        scan_video(bad)
