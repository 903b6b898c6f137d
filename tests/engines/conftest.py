"""Fixtures shared by the engine tests."""

from __future__ import annotations

import pytest

from tests.helpers import write_clip


@pytest.fixture
def feature_dir(tmp_path):
    folder = tmp_path / "features"
    folder.mkdir()
    for i, identity in enumerate(["a.jpg", "b.jpg", "c.jpg"] * 2):
        write_clip(folder / f"clip_{i:04d}.npz", identity, seed=i)
    return folder
