"""Where mexlive caches what it builds from the weights (ONNX graphs, TensorRT engines):
``$XDG_CACHE_HOME/mexlive`` (``~/.cache/mexlive`` when unset). Every entry is named by the
weights' sha256, so a changed file never meets a stale graph."""

from __future__ import annotations

import os
from pathlib import Path


def user_cache_dir() -> Path:
    """$XDG_CACHE_HOME/mexlive (~/.cache/mexlive)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mexlive"


def default_cache_dir() -> Path:
    """Where exported engines are cached: $XDG_CACHE_HOME/mexlive/engines (~/.cache/...)."""
    return user_cache_dir() / "engines"
