"""Markdown table cells and rows for the suite's report."""

from __future__ import annotations


def f(value: float | None, digits: int = 2) -> str:
    """A number with ``digits`` decimals; "–" for None or NaN."""
    return "–" if value is None or value != value else f"{value:.{digits}f}"


def row(cells) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def head(cells) -> str:
    return row(cells) + "\n|" + "|".join("---" for _ in cells) + "|"
