"""Fixtures shared by every test: the real face fixtures (skip cleanly when absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import REPO, fixtures_root

__all__ = ["REPO", "fixtures_root"]  # import them from tests.helpers (a few still come here)


@pytest.fixture
def fixtures_dir() -> Path:
    root = fixtures_root()
    if root is None:
        pytest.skip("face fixtures not found (set MEXLIVE_FIXTURES or provide ../shared/fixtures)")
    return root
