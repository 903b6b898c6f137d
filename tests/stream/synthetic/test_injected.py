"""Micro-expressions injected into a real video: the TPS truth, untouched frames, real motion."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from stream.capture.sources import AVSource
from stream.errors import MexliveError
from stream.synthetic.injected import (
    EMOTION_ORDER,
    Injected,
    InjectionConfig,
    frame_warper,
    inject,
    inject_video,
    main,
    warp_inputs,
)
from stream.synthetic.truth import read_truth_csv
from stream.synthetic.writers import H264Writer
from tests.helpers import fixtures_root

VIDEO = "lp_d11.mp4"  # 225 frames at 25 fps, a child's face; not a training identity
# 3-4 px at a 200 px face (~4-5 px on this face): inside MICRO_PX, big enough for dense flow.
CONFIG = InjectionConfig(
    seed=3, amplitude_px=(3.0, 4.0), emotions_per_position=True, max_positions=2
)


@pytest.fixture(scope="module")
def video() -> Path:
    root = fixtures_root()
    if root is None:
        pytest.skip("face fixtures not found (set MEXLIVE_FIXTURES or provide ../shared/fixtures)")
    return root / "videos" / VIDEO


@pytest.fixture(scope="module")
def items(video: Path) -> list[Injected]:
    return list(inject(video, CONFIG))


@pytest.fixture(scope="module")
def real(video: Path, items: list[Injected]) -> list[np.ndarray]:
    """The decoded frames (BGR) up to the end of the last clip, decoded independently."""
    stop = max(item.start + len(item.clip.frames) for item in items)
    frames = []
    with AVSource(video) as source:
        while len(frames) < stop and (frame := source.read()) is not None:
            frames.append(frame.image)
    return frames


def _sample(image: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Bilinear samples of a float (H, W) image at points (N, 2)."""
    xy = points.astype(np.float32)[:, None, :]  # (N, 1, 2)
    return cv2.remap(image, xy, None, cv2.INTER_LINEAR)[:, 0]


def _grey(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


def test_clips_per_position_cover_the_emotions(items: list[Injected]) -> None:
    assert len(items) == 6  # 2 positions x 3 emotions
    for position in (0, 1):
        group = [item for item in items if item.position == position]
        assert [item.clip.emotion for item in group] == list(EMOTION_ORDER)
        assert len({item.clip.clip_id for item in group}) == 3
        assert group[0].clip.clip_id == f"{VIDEO}/3/{position}/negative"
        first = group[0]
        for item in group:
            clip = item.clip
            assert clip.identity == VIDEO and clip.fps == 25.0
            assert (clip.onset, clip.apex, clip.offset) == (
                first.clip.onset,
                first.clip.apex,
                first.clip.offset,
            )
            assert 0 < clip.onset < clip.apex < clip.offset < len(clip.frames) - 1
            assert clip.onset == round(CONFIG.pre_s * 25)
            assert item.event.onset == item.start + clip.onset  # truth in video frames
            assert 0.2 <= (clip.offset - clip.onset) / 25 <= 0.5  # MICRO_S
            for i, frame in enumerate(clip.frames):
                if not clip.onset < i < clip.offset:  # same real frames outside the event
                    assert np.array_equal(frame, first.clip.frames[i])
            if item is not first:  # a different expression at the apex
                assert not np.array_equal(clip.frames[clip.apex], first.clip.frames[clip.apex])


def test_frames_outside_events_are_the_decoded_frames(
    items: list[Injected], real: list[np.ndarray]
) -> None:
    for item in items:
        clip = item.clip
        for i, frame in enumerate(clip.frames):
            if item.weights[i] == 0.0:
                assert np.array_equal(frame, real[item.start + i]), (clip.clip_id, i)
            else:
                assert clip.onset < i < clip.offset
        assert item.weights[clip.apex] == 1.0


def test_backward_map_returns_the_real_landmarks(items: list[Injected], real) -> None:
    for item in items:
        for i in (item.clip.onset + 1, item.clip.apex):  # the weakest and the full warp
            rest = item.rest_px[i]  # (68, 2) the frame's landmarks p (control points)
            clean = real[item.start + i]
            warper = frame_warper(rest, clean.shape[1::-1])
            map_x, map_y = warper.full_maps(*warp_inputs(rest, item.weights[i] * item.pattern))
            q = item.landmarks_px(i)  # (68, 2) driven landmarks
            source = np.stack([_sample(map_x, q), _sample(map_y, q)], 1)  # (68, 2)
            # The TPS interpolates its control points; the grid + upsampling keeps < 0.1 px.
            assert np.abs(source - rest).max() < 0.1
            h, w = clean.shape[:2]
            inside = [a for a in warper.anchors_px if 0 <= a[0] < w - 1 and 0 <= a[1] < h - 1]
            assert len(inside) >= 8
            anchors = np.array(inside)  # (K, 2) never move
            held = np.stack([_sample(map_x, anchors), _sample(map_y, anchors)], 1)
            assert np.abs(held - anchors).max() < 0.1
            # ...and that map is exactly what rendered the injected frame.
            redone = cv2.remap(
                clean, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
            )
            assert np.array_equal(redone, item.clip.frames[i])


def test_apex_moves_the_pixels_at_the_moved_landmarks(items: list[Injected], real) -> None:
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    for item in items:
        apex = item.clip.apex
        clean, injected = real[item.start + apex], item.clip.frames[apex]
        flow = dis.calc(_grey(clean), _grey(injected), None)  # (H, W, 2) clean -> injected
        moved = item.pattern  # (68, 2) w = 1 at the apex
        strong = np.linalg.norm(moved, axis=1) >= 1.5  # dense flow resolves these
        assert strong.sum() >= 4, item.event
        rest = item.rest_px[apex][strong]  # (K, 2)
        seen = np.stack([_sample(flow[..., 0], rest), _sample(flow[..., 1], rest)], 1)
        want = moved[strong]  # (K, 2)
        norm = np.linalg.norm(want, axis=1)
        error = np.linalg.norm(seen - want, axis=1) / norm
        cosine = (seen * want).sum(axis=1) / norm / np.maximum(np.linalg.norm(seen, axis=1), 1e-6)
        # Measured: median relative error 0.04-0.17 and cosine 1.0 (DIS, this video).
        assert np.median(error) < 0.35, (item.clip.clip_id, error)
        assert np.median(cosine) > 0.9, (item.clip.clip_id, cosine)
        # Beyond the warp's region nothing changes at all.
        warper = frame_warper(item.rest_px[apex], clean.shape[1::-1])
        outside = np.ones(clean.shape[:2], bool)
        outside[warper.y0 : warper.y1, warper.x0 : warper.x1] = False
        assert outside.sum() > 10_000
        assert np.array_equal(clean[outside], injected[outside])


def test_bad_inputs_are_one_clear_error(tmp_path: Path) -> None:
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    with pytest.raises(MexliveError, match=r"notes\.mp4"):
        list(inject(text))
    blank = tmp_path / "blank.mp4"
    with H264Writer(blank, 96, 96, 25.0) as sink:
        for _ in range(10):
            sink.write(np.full((96, 96, 3), 128, np.uint8))
    with pytest.raises(MexliveError, match="no face"):
        list(inject(blank))
    with pytest.raises(MexliveError):
        InjectionConfig(spacing_s=0.0)


def test_a_face_that_fills_the_frame(video: Path) -> None:
    # lp_d3's face is ~320 px tall in 512 px frames: the warp's grids reach the frame edges.
    (item,) = inject(video.with_name("lp_d3.mp4"), InjectionConfig(seed=1, max_positions=1))
    apex = item.clip.apex
    rest, clean = item.rest_px[apex], item.clip.frames[item.clip.onset]
    warper = frame_warper(rest, clean.shape[1::-1])
    map_x, map_y = warper.full_maps(*warp_inputs(rest, item.pattern))
    q = item.landmarks_px(apex)  # (68, 2)
    source = np.stack([_sample(map_x, q), _sample(map_y, q)], 1)  # (68, 2)
    assert np.abs(source - rest).max() < 0.1


def test_command_line_writes_the_whole_video(video: Path, tmp_path: Path, capsys) -> None:
    source = video.with_name("tpsmm_driving.mp4")  # 169 frames at 25 fps: 2 positions
    out, truth = tmp_path / "injected.mp4", tmp_path / "truth.csv"
    assert main([str(source), "--out", str(out), "--truth", str(truth), "--seed", "4"]) == 0
    with AVSource(out) as written:
        assert written.fps == 25.0
        count = 0
        while written.read() is not None:
            count += 1
    assert count == 169
    events = read_truth_csv(truth)
    assert len(events) == 2 and all(e.kind == "micro" and e.peak_px > 0 for e in events)
    assert main([str(tmp_path / "missing.mp4"), "--out", str(out), "--truth", str(truth)]) == 2
    assert "missing.mp4" in capsys.readouterr().err


# The whole-video path (inject_video) with the settings of stream.datasets.real: random gaps,
# and macro events beside the micro ones.
WHOLE = InjectionConfig(
    seed=11,  # 3 events on this video: micro, macro, micro
    pre_s=1.0,
    spacing_range_s=(1.8, 4.0),
    amplitude_px=(0.5, 5.0),
    macro_fraction=0.5,
    macro_duration_s=(0.6, 2.0),
)


@pytest.mark.slow
def test_whole_video_frames_outside_events_are_the_decoded_frames(video: Path) -> None:
    source = video.with_name("tpsmm_driving.mp4")  # 169 frames at 25 fps, face throughout
    written: list[tuple[int, float | None, np.ndarray]] = []
    events, frames, fps = inject_video(
        source, WHOLE, lambda i, pts, image, _fps: written.append((i, pts, image))
    )
    decoded = []
    with AVSource(source) as reader:
        while (frame := reader.read()) is not None:
            decoded.append((frame.pts_s, frame.image))
    assert fps == 25.0 and frames == len(written) == len(decoded) == 169
    assert [i for i, _, _ in written] == list(range(169))  # every frame once, in order
    assert [e.kind for e in events] == ["micro", "macro", "micro"]
    inside = np.zeros(169, bool)
    for event in events:
        assert 0 < event.onset < event.apex < event.offset < 169
        seconds = (event.offset - event.onset) / fps
        limits = WHOLE.duration_s if event.kind == "micro" else WHOLE.macro_duration_s
        assert limits[0] <= seconds <= limits[1], event
        assert not inside[event.onset : event.offset + 1].any()  # events never overlap
        inside[event.onset + 1 : event.offset] = True  # w > 0 strictly inside
        apex_image = written[event.apex][2]
        assert not np.array_equal(apex_image, decoded[event.apex][1])  # the warp is there
    for (i, pts, image), (pts_decoded, image_decoded) in zip(written, decoded, strict=True):
        assert pts == pts_decoded  # the video's own timestamps
        if not inside[i]:
            assert np.array_equal(image, image_decoded), i  # bit for bit
    gaps = np.diff([e.onset for e in events]) / fps  # (K - 1,) s
    assert np.all(gaps >= 1.8 - 1 / fps)
    assert not np.allclose(gaps, WHOLE.spacing_s)  # drawn gaps, not the 2.5 s grid
