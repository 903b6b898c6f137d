"""The README's samples, made now from the shipped weights: what ``make demo`` prints, one of
the event lines it writes, and the head of ``mexlive --help``.

    python -m benchmarks.readme_samples            # print the three blocks
    python -m benchmarks.readme_samples --write    # put them in README.md, between markers
    python -m benchmarks.readme_samples --check    # exit 1 when README.md says otherwise

The demo is ``DEMO_COMMAND`` (``make demo`` runs exactly it), run in a temporary folder: the
synthetic face for 750 frames (25 s at 30 fps) rendered as fast as the machine goes, so the
frames, events and table are the same on every machine and at any load. What does depend on
the machine and the moment (each line's latency, the run's seconds and frames/s, the event
line's wall clock, monotonic time and session id) is masked by ``normalise`` before two
samples are compared; the README keeps the values of the run that wrote it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
DEMO_ARGS = ("--source", "synthetic:5", "--headless", "--no-realtime", "--max-frames", "750")
DEMO_COMMAND = "mexlive " + " ".join(DEMO_ARGS)
HELP_COLUMNS = "100"  # argparse wraps to the terminal: one width for every machine
# (pattern, replacement) for what varies between two runs of the same command
VOLATILE = (
    (re.compile(r"\+\d+ ms$", re.M), "+… ms"),  # a console line's capture-to-event latency
    (re.compile(r" in [\d.]+ s \([\d.]+ fps\)"), " in … s (… fps)"),  # the summary line
    (re.compile(r'"(t_wall|session)":"[^"]*"'), r'"\1":"…"'),
    (re.compile(r'"(t_mono_ns|capture_to_event|recognizer)":[\d.]+'), r'"\1":0'),
)


@dataclass(frozen=True)
class Samples:
    """The three README blocks, each the text inside its code fence."""

    demo: str  # the demo's console: start-up line, an event per line, the truth table, summary
    event: str  # the demo's first micro-expression line of the event log
    help: str  # `mexlive --help` down to its command list, then the titles of its flag groups

    def blocks(self) -> dict[str, str]:
        """Marker name → the block as it stands in the README (fence included)."""
        return {
            "demo-output": f"```\n$ {DEMO_COMMAND}\n{self.demo}\n```",
            "event-line": f"```json\n{self.event}\n```",
            "help": f"```\n$ mexlive --help\n{self.help}\n```",
        }


def normalise(text: str) -> str:
    """``text`` with the parts that vary between runs and machines masked."""
    for pattern, replacement in VOLATILE:
        text = pattern.sub(replacement, text)
    return text


def run_demo() -> tuple[str, str]:
    """(the console text of ``DEMO_COMMAND``, its first micro-expression log line)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}  # stdout and stderr in the order printed
    with tempfile.TemporaryDirectory() as folder:
        done = subprocess.run(
            [sys.executable, str(REPO / "run_live.py"), *DEMO_ARGS],
            cwd=folder,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=600,
        )
        if done.returncode != 0:
            raise SystemExit(f"readme_samples: the demo failed ({done.returncode}):\n{done.stdout}")
        lines = Path(folder, "events.jsonl").read_text().splitlines()
    micro = (line for line in lines if json.loads(line).get("kind") == "micro")
    return done.stdout.rstrip("\n"), next(micro, "")


def help_head() -> str:
    """``mexlive --help`` through its command list, then the titles of its flag groups."""
    from stream.app.flags import build_parser

    parser = build_parser()
    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = HELP_COLUMNS
    try:
        text = parser.format_help()
    finally:
        if previous is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = previous
    head = text.split("\noptions:\n", 1)[0].rstrip("\n")
    titles = [group.title or "" for group in parser._action_groups]  # argparse keeps no other list
    groups = [t.split(":")[0] for t in titles if t not in ("positional arguments", "options")]
    return f"{head}\n\nthen the flags, by purpose: {', '.join(groups)}"


def make_samples() -> Samples:
    demo, event = run_demo()
    return Samples(demo=demo, event=event, help=help_head())


def readme_blocks(text: str) -> dict[str, str]:
    """Marker name → the block between ``<!-- readme:NAME:begin -->`` and its end marker."""
    found = re.finditer(
        r"<!-- readme:([a-z-]+):begin -->\n(.*?)\n<!-- readme:\1:end -->", text, re.S
    )
    return {match.group(1): match.group(2) for match in found}


def write_readme(samples: Samples, path: Path = README) -> None:
    text = path.read_text()
    for name, block in samples.blocks().items():
        begin, end = f"<!-- readme:{name}:begin -->", f"<!-- readme:{name}:end -->"
        if begin not in text:
            raise SystemExit(f"readme_samples: {path} has no {begin} marker")
        head, rest = text.split(begin, 1)
        text = f"{head}{begin}\n{block}\n{end}{rest.split(end, 1)[1]}"
    path.write_text(text)


def differences(samples: Samples, path: Path = README) -> list[str]:
    """The names of the README blocks that differ from ``samples`` (after ``normalise``)."""
    have = readme_blocks(path.read_text())
    return [
        name
        for name, block in samples.blocks().items()
        if normalise(have.get(name, "")) != normalise(block)
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="rewrite README.md's blocks")
    parser.add_argument("--check", action="store_true", help="exit 1 when README.md differs")
    args = parser.parse_args(argv)
    samples = make_samples()
    if args.write:
        write_readme(samples)
        print(f"wrote {len(samples.blocks())} blocks to {README}")
    elif args.check:
        stale = differences(samples)
        print(f"README.md differs in: {', '.join(stale)}" if stale else "README.md is current")
        return 1 if stale else 0
    else:
        print("\n\n".join(samples.blocks().values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
