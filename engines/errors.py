"""Errors a person can act on, their kinds, and the exit code that reports them.

Every error a person can cause (a flag value, a file, weights, a backend this machine lacks)
is a ``MexliveError``; each command line catches ``MexliveError`` once, prints its message as
one line on stderr (``report_error``) and exits with ``EXIT_BAD_INPUT``. Anything else is a
bug and keeps its traceback.

The root lives here, not in ``stream``, because ``engines`` and ``calibration`` never import
``stream``; ``stream.errors`` re-exports it and adds the stream-side kinds (sources, sinks).
"""

from __future__ import annotations

import sys
from typing import IO

EXIT_BAD_INPUT = 2  # every command line's exit code for an error a person can fix


class MexliveError(Exception):
    """An error with a message meant for the person running mexlive or one of its tools."""


class BadInputError(MexliveError):
    """A flag or argument value that cannot be used (out of range, a wrong combination)."""


class WeightsError(MexliveError):
    """Weights that must not be used: missing, altered (sha256 mismatch) or the wrong shape."""


class BackendError(MexliveError):
    """A backend this machine cannot run (no CUDA, TensorRT or ONNX Runtime), or a broken
    exported graph."""


class DataError(MexliveError):
    """Data on disk that cannot be used: feature files, stacks, annotation tables, prediction
    logs, truth tables; the message names the file."""


def report_error(exc: MexliveError, prog: str | None = None, file: IO[str] | None = None) -> int:
    """Print ``exc`` as one line (``PROG: error: message``, or ``error: message`` without a
    program name) on stderr; returns ``EXIT_BAD_INPUT`` for the caller to exit with.

    Example:
        >>> try:  # doctest: +SKIP
        ...     run(args)
        ... except MexliveError as exc:
        ...     return report_error(exc, "mexlive")
    """
    prefix = f"{prog}: " if prog else ""
    # One line, whatever the message holds (a library's multi-line text, say).
    message = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    print(f"{prefix}error: {message}", file=file or sys.stderr)
    return EXIT_BAD_INPUT


__all__ = [
    "EXIT_BAD_INPUT",
    "BackendError",
    "BadInputError",
    "DataError",
    "MexliveError",
    "WeightsError",
    "report_error",
]
