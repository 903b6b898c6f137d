"""Shared test helpers: where the real face fixtures are, and a repo root for subprocess runs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def fixtures_root() -> Path | None:
    """$MEXLIVE_FIXTURES, else ../shared/fixtures beside the repository; None when absent."""
    candidates = [os.environ.get("MEXLIVE_FIXTURES"), REPO.parent / "shared" / "fixtures"]
    for candidate in candidates:
        if candidate and Path(candidate, "videos").is_dir():
            return Path(candidate)
    return None


@pytest.fixture
def fixtures_dir() -> Path:
    root = fixtures_root()
    if root is None:
        pytest.skip("face fixtures not found (set MEXLIVE_FIXTURES or provide ../shared/fixtures)")
    return root
