"""What `make test` runs (read with `make -n`, nothing executed): no apt, the slowest tests
printed, and the browser's system package behind its own named target."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.helpers import REPO


def dry_run(target: str) -> str:
    if shutil.which("make") is None:
        pytest.skip("make not installed")
    # The stamp is named after an existing file so that make plans no venv rebuild.
    result = subprocess.run(
        ["make", "-n", target, "STAMP=pyproject.toml"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_make_test_installs_nothing_and_prints_the_slowest_tests():
    recipe = dry_run("test")
    assert "apt-get" not in recipe and "browser-deps" in recipe  # it only says how to enable
    assert "pytest --durations=15" in recipe


def test_browser_deps_installs_chromium_and_ci_calls_it():
    assert "apt-get install -y -qq chromium" in dry_run("browser-deps")
    assert "make browser-deps" in (REPO / ".ci" / "run").read_text()
