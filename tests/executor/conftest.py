"""Shared fixtures for the verification engine's tests: one warm engine for the whole session."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from executor import datasets
from executor.engine import Engine
from executor.limits import Limits
from executor.settings import Settings

sys.path.insert(0, str(Path(__file__).resolve().parent))  # for `import executor_helpers` in tests below

from executor_helpers import REPO_ROOT, sandbox_processes  # noqa: E402

ARTIFACTS = REPO_ROOT / "artifacts"
# A uid range of the tests' own, so that the "nothing left behind" checks cannot be confused by
# other engines running on the same machine with the default base (61000).
TEST_UID_BASE = 64000


@pytest.fixture(scope="session")
def engine() -> Iterator[Engine]:
    """One engine (4 hash-seed lanes of warm zygotes) for every executor test."""
    eng = Engine(Settings(limits=Limits(timeout_s=5.0), sandbox={"uid_base": TEST_UID_BASE}))
    eng.start()
    yield eng
    zygotes = [info["pid"] for info in eng.pool.zygote_info()]
    eng.close()
    # After the whole session: no sandbox process may be left, and the zygotes are gone.
    leftovers = sandbox_processes(TEST_UID_BASE, eng.pool.size)
    assert not leftovers, f"sandbox processes left behind: {leftovers}"
    assert not [
        pid
        for pid in zygotes
        if Path(f"/proc/{pid}").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text()
    ], "zygotes still running after close()"


@pytest.fixture(scope="session")
def data_root() -> Path:
    root = datasets.data_dir()
    if not (root / "cruxeval" / "cruxeval.jsonl").exists() or not datasets.azr_seed_files(root):
        message = (
            f"\n{'!' * 78}\n!! DATA NOT FOUND under {root} (set AZR_DATA_DIR): the CRUXEval / AZR seed "
            f"conformance tests are SKIPPED\n{'!' * 78}"
        )
        print(message, file=sys.stderr)
        warnings.warn(message, stacklevel=1)
        pytest.skip(message)
    return root


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
