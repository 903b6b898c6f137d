"""Errors a person can act on. The CLI prints their message and exits with code 2.

The root ``MexliveError``, the engine-side kinds and ``EXIT_BAD_INPUT`` are defined once in
``engines.errors`` (engines and calibration never import stream) and re-exported here; the
kinds below are the stream side's: sources and sinks.
"""

from __future__ import annotations

from engines.errors import (
    EXIT_BAD_INPUT,
    BackendError,
    BadInputError,
    DataError,
    MexliveError,
    WeightsError,
    report_error,
)


class SourceError(MexliveError):
    """A source cannot be opened or read (missing file, bad codec, dead camera or URL)."""


class SourceReadError(SourceError):
    """A read failed after the source had opened; live sources may reconnect."""


class CorruptFrameError(SourceError):
    """One frame or packet could not be decoded; the source itself goes on (skip, count)."""


class OutputError(MexliveError):
    """A sink cannot be written or served: the event log, a recording, a feature dump, the
    metrics or the preview port."""


__all__ = [
    "EXIT_BAD_INPUT",
    "BackendError",
    "BadInputError",
    "CorruptFrameError",
    "DataError",
    "MexliveError",
    "OutputError",
    "SourceError",
    "SourceReadError",
    "WeightsError",
    "report_error",
]
