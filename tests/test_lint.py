"""ruff and mypy are part of the test run, so CI keeps the tree clean (the same as `make lint`)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PACKAGES = ["executor", "api", "tests", "client", "trainer"]


def _tool(name: str) -> str:
    found = BIN / name
    if found.exists():
        return str(found)
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed (scripts/bootstrap.sh test installs it)")
    return path


@pytest.mark.parametrize(
    "command",
    [
        ["ruff", "format", "--check", *PACKAGES],
        ["ruff", "check", *PACKAGES],
        ["mypy", "executor", "api"],
    ],
    ids=["ruff-format", "ruff-check", "mypy"],
)
def test_lint(command: list[str]) -> None:
    done = subprocess.run(
        [_tool(command[0]), *command[1:]], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, f"{' '.join(command)}:\n{done.stdout[-4000:]}\n{done.stderr[-2000:]}"
