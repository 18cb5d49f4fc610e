"""ruff and mypy are part of the test run, so CI keeps the tree clean (`make lint` runs this file,
and .pre-commit-config.yaml the same commands before each commit).

One ruff configuration (the root pyproject.toml) covers every package; mypy checks every
package (the trainer included), with the strict flags on the pure modules (pyproject.toml,
[[tool.mypy.overrides]]).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
MYPY_TARGETS = ["executor", "api", "cli", "bench", "client/src", "trainer/src"]
COMMANDS = {
    "ruff-format": ["ruff", "format", "--check", "."],
    "ruff-check": ["ruff", "check", "."],
    "mypy": ["mypy", *MYPY_TARGETS],
}


def _tool(name: str) -> str:
    found = BIN / name
    if found.exists():
        return str(found)
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed (scripts/bootstrap.sh test installs it)")
    return path


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_lint(name: str) -> None:
    command = COMMANDS[name]
    done = subprocess.run(
        [_tool(command[0]), *command[1:]], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, f"{' '.join(command)}:\n{done.stdout[-4000:]}\n{done.stderr[-2000:]}"


def test_one_ruff_configuration() -> None:
    found = [
        path.relative_to(ROOT).as_posix()
        for path in ROOT.rglob("*.toml")
        if ".venv" not in path.parts
        and (path.name in ("ruff.toml", ".ruff.toml") or "tool" in tomllib.loads(path.read_text()))
        and "ruff" in tomllib.loads(path.read_text()).get("tool", {})
    ]
    assert found == ["pyproject.toml"]


def test_pre_commit_runs_the_same_checks_with_the_venvs_tools() -> None:
    """The hooks are local (no network), call the repository's .venv, and check what CI checks."""
    config = (ROOT / ".pre-commit-config.yaml").read_text()
    assert "repo: local" in config and "https://" not in config
    entries = [line.split("entry:", 1)[1].strip() for line in config.splitlines() if "entry:" in line]
    assert entries == [
        ".venv/bin/ruff format",
        ".venv/bin/ruff check --fix",
        f".venv/bin/mypy {' '.join(MYPY_TARGETS)}",
    ]
