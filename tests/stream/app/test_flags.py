"""The flags: each default printed once, the flags' defaults equal the builder's, one key table
behind the manual, --help and the window, and RunConfig.from_args's checks."""

from __future__ import annotations

import re

import pytest

import run_live
from stream.app.config import RunConfig
from stream.app.flags import build_parser
from stream.errors import MexliveError
from stream.live.builder import LiveConfig
from stream.ui.controls import KEY_ACTIONS, WINDOW_KEYS, keys_manual, keys_summary


def config(*argv: str) -> RunConfig:
    return RunConfig.from_args(build_parser().parse_args(list(argv)))


def test_help_says_each_default_once():
    text = build_parser().format_help()
    entries = re.split(r"\n  (?=-)", text)  # one entry per option
    for entry in entries:
        assert entry.count("default") <= 1, entry


def test_the_flags_defaults_are_the_builders():
    run = config()
    assert run.mode == "one" and run.sources == ("synthetic",)
    assert run.live == LiveConfig()  # same source, options, limits, spotter, recognizer


def test_one_key_table_behind_the_manual_the_help_and_the_window():
    assert keys_manual() in run_live.__doc__
    assert keys_summary() in build_parser().epilog
    assert set(KEY_ACTIONS.values()) == {key.action for key in WINDOW_KEYS}
    assert KEY_ACTIONS["\x1b"] == KEY_ACTIONS["q"] == "quit" and KEY_ACTIONS[" "] == "pause"


@pytest.mark.parametrize(
    "argv, mode",
    [
        ((), "one"),  # the synthetic face
        (("--source", "a.mp4", "--source", "0"), "many"),  # several streams, one engine
        (("--gradio",), "preview"),
        (("--make-synthetic", "out"), "make_synthetic"),
    ],
)
def test_mode(argv, mode):
    assert config(*argv).mode == mode


@pytest.mark.parametrize(
    "argv, names",
    [
        (("--max-frames", "0"), "--max-frames must be positive"),
        (("--duration", "-1"), "--duration must be positive"),
        (("--events-max-mb", "0"), "--events-max-mb must be positive"),
        (("--make-synthetic", "out", "--count", "0"), "--count must be positive"),
        (("--gradio", "--source", "a", "--source", "b"), "--gradio previews one --source"),
        (("--source", "a", "--source", "b", "--record", "x.mp4"), "take one --source"),
    ],
)
def test_bad_values_are_refused_with_the_flags_name(argv, names):
    with pytest.raises(MexliveError, match=names):
        config(*argv)


def test_privacy_flags_become_a_factory_only_when_asked():
    assert config().live.privacy is None
    run = config("--privacy-sticker", "sticker.png", "--privacy-region", "chin")
    assert run.privacy.wanted and run.privacy.region == "chin"
    assert run.live.privacy is not None
