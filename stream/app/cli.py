"""The ``mexlive`` command: flags → one RunConfig → a run; the one place errors become exit 2."""

from __future__ import annotations

import sys

from stream.app.config import RunConfig
from stream.app.flags import build_parser
from stream.app.run import run
from stream.errors import MexliveError, report_error


def main(argv: list[str] | None = None) -> int:
    """Parse, turn the flags into one RunConfig, run it; bad input is one line and exit 2."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["tail"]:
        from stream.output.tail import main as tail_main

        return tail_main(argv[1:])
    if argv[:1] == ["batch"]:
        from stream.app.batch import main as batch_main  # Ray is imported there only

        return batch_main(argv[1:])
    if argv[:1] == ["inspect"]:
        from stream.app.inspect import main as inspect_main

        return inspect_main(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        return run(RunConfig.from_args(args))
    except MexliveError as exc:  # every error a person can cause; anything else is a bug
        return report_error(exc, "mexlive")
