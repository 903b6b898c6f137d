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
        (("--decode-threads", "-1"), "--decode-threads -1 is out of range"),
        (("--make-synthetic", "out", "--count", "0"), "--count must be positive"),
        (("--gradio", "--source", "a", "--source", "b"), "--gradio previews one --source"),
        (("--source", "a", "--source", "b", "--record", "x.mp4"), "take one --source"),
        (("--weights", "nope.pt"), "--weights nope.pt: no such file"),  # before any model loads
        (("--privacy-sticker", "."), "--privacy-sticker .: is a folder"),
    ],
)
def test_bad_values_are_refused_with_the_flags_name(argv, names):
    with pytest.raises(MexliveError, match=names):
        config(*argv)


def test_privacy_flags_become_a_factory_only_when_asked(tmp_path):
    assert config().live.privacy is None
    sticker = tmp_path / "sticker.png"
    sticker.write_bytes(b"checked when the run builds it")
    run = config("--privacy-sticker", str(sticker), "--privacy-region", "chin")
    assert run.privacy.wanted and run.privacy.region == "chin"
    assert run.live.privacy is not None


def help_of(*argv: str) -> str:
    """What ``mexlive ARGV --help`` prints, at a fixed width."""
    import contextlib
    import io

    from stream.app.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        main([*argv, "--help"])
    return out.getvalue()


def test_help_lists_every_command_with_a_line_each():
    text = help_of()
    for command in ("tail LOG", "inspect VIDEO", "batch INPUT", "--make-synthetic DIR", "--gradio"):
        assert len([line for line in text.splitlines() if f"mexlive {command}" in line]) == 1


def test_help_groups_the_flags_by_what_a_user_wants():
    parser = build_parser()
    groups = {
        (group.title or "").split(":")[0]: {a.dest for a in group._group_actions}
        for group in parser._action_groups
    }
    for title in ("source", "analysis", "output", "privacy", "preview", "performance"):
        assert title in groups, groups.keys()
    assert {"source", "fps", "max_frames", "duration"} <= groups["source"]
    assert {"weights", "backend", "spotter", "recognizer_weights"} <= groups["analysis"]
    assert {"events", "record", "metrics_port", "verbose"} <= groups["output"]
    assert {"align", "stage_threads", "ring"} <= groups["performance"]
    assert {"gradio", "port", "headless"} <= groups["preview"]


@pytest.mark.parametrize("command", [(), ("tail",), ("inspect",), ("batch",)])
def test_help_speaks_to_a_user(command):
    text = help_of(*command)
    for word in ("None", "GIL", "dlib", "bench_privacy", "``"):
        assert word not in text, (command, word)


@pytest.mark.parametrize(
    "command, flag, default",
    [
        ((), "--events", "events.jsonl"),
        ((), "--port", "7860"),
        (("tail",), "--color", "auto"),
        (("inspect",), "--spotter", "learned,classic"),
        (("batch",), "--retries", "2"),
        (("batch",), "--workers", "the core count"),
    ],
)
def test_every_command_shows_its_defaults(command, flag, default):
    entry = re.split(r"\n  (?=-)", help_of(*command).split(f"\n  {flag}", 1)[1])[0]
    assert f"default: {default}" in " ".join(entry.split()), entry


def test_a_bad_flag_is_one_line(capsys):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["--bogus"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.splitlines()
    assert err == ["mexlive: error: unrecognized arguments: --bogus (usage: mexlive --help)"]
