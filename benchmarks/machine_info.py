"""The CPU a benchmark ran on, for the "Machine:" line every table carries."""

from __future__ import annotations

import platform
from pathlib import Path


def cpu_name(fallback: str | None = None) -> str:
    """/proc/cpuinfo's model name; else ``fallback`` (default: what ``platform`` says)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return fallback if fallback is not None else platform.processor() or platform.machine()
