"""The engine issue's hostile corpus and its tests, unchanged, on the Docker backend.

tests/executor/sandbox/test_sandbox_hostile.py is imported as it is; only its `engine`
fixture is replaced by an engine whose pool is the Docker backend.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from executor.engine import Engine

EXECUTOR_TESTS = Path(__file__).resolve().parents[1] / "executor"
for folder in (EXECUTOR_TESTS, EXECUTOR_TESTS / "sandbox"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

if not (EXECUTOR_TESTS / "sandbox" / "test_sandbox_hostile.py").exists():  # pragma: no cover
    pytest.skip("tests/executor/sandbox/test_sandbox_hostile.py is not there", allow_module_level=True)

from test_sandbox_hostile import *  # noqa: E402,F403 - the engine's corpus tests, unchanged

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def engine(docker_engine: Engine) -> Iterator[Engine]:
    """The corpus tests' `engine`, backed by sandbox containers."""
    yield docker_engine
