"""The README's samples are what the shipped weights and today's code print: the demo's
output, its event line and the head of ``mexlive --help`` (``benchmarks.readme_samples``);
``make demo`` runs exactly the README's sample command. Times that vary with the machine are
masked explicitly (``normalise``), so no test here depends on the machine's speed."""

from __future__ import annotations

import re

import pytest

from benchmarks.readme_samples import (
    DEMO_ARGS,
    DEMO_COMMAND,
    README,
    REPO,
    differences,
    help_head,
    make_samples,
    normalise,
    readme_blocks,
)


def test_the_readme_shows_todays_help():
    block = readme_blocks(README.read_text())["help"]
    assert normalise(block) == normalise(f"```\n$ mexlive --help\n{help_head()}\n```"), (
        "README.md's --help excerpt is stale: python -m benchmarks.readme_samples --write"
    )


def test_make_demo_runs_the_readme_sample_command():
    recipe = re.search(
        r"^demo:.*\n\t\$\(VENV\)/bin/mexlive (.*)$", (REPO / "Makefile").read_text(), re.M
    )
    assert recipe is not None and tuple(recipe.group(1).split()) == DEMO_ARGS
    demo = readme_blocks(README.read_text())["demo-output"]
    assert demo.splitlines()[1] == f"$ {DEMO_COMMAND}"


@pytest.mark.parametrize(
    "one, other, same",
    [
        # a console line's latency varies with the machine
        ("[ 4.43 s] macro surprise  +352 ms", "[ 4.43 s] macro surprise  +19 ms", True),
        # the summary's seconds and frames/s too
        (
            "750 of 750 frames in 8.9 s (84.6 fps), events: 4",
            "750 of 750 frames in 25.0 s (30.0 fps), events: 4",
            True,
        ),
        # the event line's clocks, session and measured latencies
        (
            '{"seq":348,"latency_ms":{"lookahead":250.0,"recognizer":24.9,"capture_to_event":364.3},"t_mono_ns":747210747438,"t_wall":"2026-12-01T21:21:53.870Z","session":"c6f20412aa14"}',
            '{"seq":348,"latency_ms":{"lookahead":250.0,"recognizer":3.1,"capture_to_event":12.0},"t_mono_ns":5,"t_wall":"2027-01-01T00:00:00.000Z","session":"0123456789ab"}',
            True,
        ),
        # but not what the weights decide: frames, events, counts, the look-ahead
        (
            "750 of 750 frames in 8.9 s (84.6 fps), events: 4",
            "750 of 750 frames in 8.9 s (84.6 fps), events: 5",
            False,
        ),
        (
            '{"seq":348,"latency_ms":{"lookahead":250.0}}',
            '{"seq":349,"latency_ms":{"lookahead":250.0}}',
            False,
        ),
        ('{"latency_ms":{"lookahead":250.0}}', '{"latency_ms":{"lookahead":300.0}}', False),
        ("11.09–11.34 s (0.25 s)  neg 0.65", "11.09–11.34 s (0.25 s)  neg 0.66", False),
    ],
)
def test_normalise_masks_only_what_varies_with_the_machine(one, other, same):
    assert (normalise(one) == normalise(other)) == same


@pytest.mark.slow  # one 750-frame run of the synthetic face: ~10 s on two cores
def test_the_readme_shows_what_the_demo_prints_now():
    import torch

    if torch.cuda.is_available():  # --backend auto picks a GPU backend: another start-up line
        pytest.skip("the README's sample is the CPU run (ONNX Runtime); this machine has CUDA")
    stale = differences(make_samples())
    assert not stale, (
        f"README.md's {', '.join(stale)} differ from the demo run now "
        "(python -m benchmarks.readme_samples --write rewrites them)"
    )
