"""Errors a person can act on. The CLI prints their message and exits with code 2."""

from __future__ import annotations

EXIT_BAD_INPUT = 2  # the exit code of every error a person can act on


class MexliveError(Exception):
    """An error with a message meant for the person running mexlive."""


class SourceError(MexliveError):
    """A source cannot be opened or read (missing file, bad codec, dead camera or URL)."""


class SourceReadError(SourceError):
    """A read failed after the source had opened; live sources may reconnect."""


class CorruptFrameError(SourceError):
    """One frame or packet could not be decoded; the source itself goes on (skip, count)."""
