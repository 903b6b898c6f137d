"""The window's keys and the HUD stage: toggles, run-time recording, recalibration handed to
the worker. (The keys pressed in a real window under Xvfb: tests/system/test_window.py.)"""

from __future__ import annotations

import numpy as np
import pytest

from stream.contracts import Frame, FrameResults
from stream.errors import MexliveError
from stream.ui.controls import KEY_ESC, LiveControls, Recording, timestamped_path
from stream.ui.hud import HudOptions, HudState


def frames(n: int, start: int = 0):
    rng = np.random.default_rng(0)
    for i in range(start, start + n):
        image = rng.integers(0, 255, (120, 160, 3), np.uint8)
        yield Frame(i, i * 33_333_333, i / 30, image)


def decoded_frames(path) -> int:
    import av

    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def controls(tmp_path, **kwargs) -> tuple[LiveControls, list[np.ndarray], list[str]]:
    shown, said = [], []
    live = LiveControls(
        HudState(),
        HudOptions(),
        kwargs.pop("recording", Recording(None, fps=30.0, folder=tmp_path)),
        show=lambda image: shown.append(image.copy()),
        say=said.append,
        **kwargs,
    )
    return live, shown, said


@pytest.mark.parametrize(
    "key, quits",
    [(ord("q"), True), (KEY_ESC, True), (ord("h"), False), (ord("x"), False), (300, False)],
)  # q and Esc close the window; other keys (and codes past 255) do not
def test_quit_keys(tmp_path, key, quits):
    live, _, _ = controls(tmp_path)
    assert live.handle_key(key) is quits


def test_toggles(tmp_path):
    live, _, said = controls(tmp_path)
    for char, attribute in (("h", "hud"), ("l", "landmarks")):
        live.handle_key(ord(char))
        assert getattr(live.options, attribute) is False
        live.handle_key(ord(char))
        assert getattr(live.options, attribute) is True
    live.handle_key(ord(" "))
    assert live.paused
    live.handle_key(ord("p"))  # no sticker here: the wish is kept, the HUD says unavailable
    assert live.privacy_wanted and live.options.privacy == "unavailable"
    assert said[-1] == "privacy sticker: unavailable"


def test_privacy_on_off_when_a_sticker_exists(tmp_path):
    live, _, _ = controls(tmp_path, privacy_available=True)
    assert live.options.privacy == "off"
    live.handle_key(ord("p"))
    assert live.options.privacy == "on"
    live.handle_key(ord("p"))
    assert live.options.privacy == "off"


def test_r_records_annotated_frames_to_timestamped_files(tmp_path):
    live, shown, said = controls(tmp_path)
    stage = live.stage()
    for frame in frames(3):
        stage.fn(frame, FrameResults())
    live.handle_key(ord("r"))
    assert live.options.recording
    for frame in frames(10, start=3):
        stage.fn(frame, FrameResults())
    live.handle_key(ord("r"))
    assert not live.options.recording
    for frame in frames(3, start=13):
        stage.fn(frame, FrameResults())
    (path,) = tmp_path.glob("mexlive-*.mp4")
    assert decoded_frames(path) == 10  # only what came while recording
    assert said[0] == f"recording to {path}" and said[1] == f"recording saved: {path}"
    # What was shown carries the HUD (the key line at least), not the raw frame.
    assert len(shown) == 16 and not np.array_equal(shown[0], next(frames(1)).image)


def test_record_path_starts_at_once_then_r_makes_new_files(tmp_path):
    first = tmp_path / "session.mkv"
    recording = Recording(first, fps=30.0)
    assert recording.active
    for frame in frames(4):
        recording.write(frame.image, frame.pts_s)
    assert recording.toggle() == first  # stops
    second = recording.toggle()
    assert second.parent == tmp_path and second.suffix == ".mkv" and second != first
    recording.write(next(frames(1)).image, 0.0)
    recording.stop()
    assert decoded_frames(first) == 4 and decoded_frames(second) == 1


def test_record_into_a_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(MexliveError, match="folder does not exist"):
        Recording(tmp_path / "nope" / "a.mp4", fps=30.0)


def test_timestamped_names_do_not_collide(tmp_path):
    first = timestamped_path(tmp_path, now=0.0)
    first.touch()
    assert timestamped_path(tmp_path, now=0.0) != first


def test_recalibrate_runs_in_the_worker_between_frames(tmp_path):
    calls = []
    live, _, _ = controls(tmp_path, recalibrate=lambda: calls.append("now"))
    live.handle_key(ord("c"))
    assert calls == []  # the key only asks
    stage = live.stage()
    for frame in frames(2):
        stage.fn(frame, FrameResults())
    assert calls == ["now"]  # done once, by the stage, on the next frame


def test_stage_feeds_the_hud_state_without_a_consumer(tmp_path):
    live = LiveControls(HudState(), HudOptions(), Recording(None, 30.0, folder=tmp_path))
    for frame in frames(5):
        live.stage().fn(frame, FrameResults(apex_score=0.25))
    assert np.count_nonzero(live.hud_state.snapshot().scores == 0.25) == 5
