"""The argument parser every mexlive command uses: a bad flag is one line, and each flag's
help shows its default once."""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

from stream.errors import EXIT_BAD_INPUT


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Adds "(default: X)" only where the help does not already say its default, and not for
    None or False (a flag that is off, or a default the help explains in words). Descriptions
    and epilogs keep their own line breaks (command lists, examples)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        unset = action.default is None or action.default is False
        if "default" in text or unset or action.default == argparse.SUPPRESS:
            return text
        return super()._get_help_string(action)


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line naming the way to the full help: the
    usage of ~50 flags would bury the one line that says what is wrong."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {message} (usage: {self.prog} --help)", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)
