"""The zygote's two ways of forking a child: the C loop (spawn.c) and plain Python.

The C loop is an accelerator: the verdicts must be the same whichever way a child was
started. The session's engine forks through C (when a compiler is here, as in CI); a
pool of its own forks in Python, and both run the hostile corpus and a set of ordinary
and determinism-trap programs.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from executor_helpers import child_pids, sandbox_processes
from hostile_corpus import CORPUS

from executor.engine import Engine
from executor.sandbox import native, runtime
from executor.sandbox.pool import PoolConfig, SandboxPool, default_sandbox_python

PYTHON_POOL_UID_BASE = 64600

ORDINARY = [
    ("echo", "def f(a):\n    return a", "[1, 'x', (2, 3)]"),
    ("raises", "def f(a):\n    return 1 // a", "0"),
    ("top-level-raises", "raise ValueError('no')\ndef f(a):\n    return a", "1"),
    ("no-f", "def g(a):\n    return a", "1"),
    ("bad-input", "def f(a):\n    return a", "undefined_name + 1"),
    ("prints", "def f(a):\n    print('hello', a)\n    return a", "3"),
    ("prints-flood", "def f(a):\n    print('x' * 2_000_000)\n    return a", "3"),
    ("huge-output", "def f(a):\n    return list(range(10 ** 6))", "0"),
    ("set-order", "def f(a):\n    return list({'apple', 'kiwi', 'fig', 'plum'})", "0"),
    ("mutable-default", "def f(a, seen=[]):\n    seen.append(a)\n    return len(seen)", "1"),
    ("id", "def f(a):\n    return id(object())", "0"),
    ("spin", "def f(a):\n    while True:\n        pass", "0"),
    ("memory", "def f(a):\n    return len(bytearray(10 ** 10))", "0"),
    ("recursion", "def f(a):\n    return f(a + 1)", "0"),
    ("exit", "import os\ndef f(a):\n    os._exit(3)", "0"),
    ("abort", "import os\ndef f(a):\n    os.abort()", "0"),
]

# Whose values do not depend on the process (hash seed, addresses, environment).
SAME_VALUE = {"echo", "prints", "mutable-default"}


def _job(program: str, argument: str, timeout_s: float = 2.0) -> dict[str, Any]:
    return {
        "mode": "run",
        "program": program,
        "input": argument,
        "calls": 2,
        "limits": {"timeout_s": timeout_s, "cpu_s": 3, "memory_mb": 256},
    }


def _jobs() -> list[tuple[str, dict[str, Any]]]:
    jobs = [(name, _job(program, argument)) for name, program, argument in ORDINARY]
    jobs += [
        (f"hostile:{case.name}", _job(case.program.replace("{MARK}", "parity"), case.input, case.timeout_s))
        for case in CORPUS
    ]
    return jobs


@pytest.fixture(scope="module")
def python_pool() -> Iterator[SandboxPool]:
    pool = SandboxPool(PoolConfig(lanes=2, sandbox_uid_base=PYTHON_POOL_UID_BASE, spawn_helper=""))
    pool.start()
    yield pool
    zygotes = [info["pid"] for info in pool.zygote_info()]
    pool.close()
    assert sandbox_processes(PYTHON_POOL_UID_BASE, pool.size) == []
    assert not [pid for pid in zygotes if Path(f"/proc/{pid}").exists() and child_pids(pid)]


def _needs_helper() -> None:
    if native.spawn_helper(default_sandbox_python()) is None:
        pytest.skip("the C fork loop cannot be built here (no C compiler or no Python.h): Python forks only")


def test_the_engine_forks_through_the_c_loop(engine: Engine) -> None:
    _needs_helper()
    assert {info["spawn"] for info in engine.pool.zygote_info()} == {"c"}


def test_a_pool_told_to_fork_in_python_does(python_pool: SandboxPool) -> None:
    assert {info["spawn"] for info in python_pool.zygote_info()} == {"python"}


def test_a_missing_helper_file_means_python_forks(tmp_path: Path) -> None:
    assert runtime.load_spawn_helper(str(tmp_path / "absent.so")) is None
    assert runtime.load_spawn_helper(None) is None
    broken = tmp_path / "broken.so"
    broken.write_bytes(b"not an ELF file")
    assert runtime.load_spawn_helper(str(broken)) is None


def test_the_helper_is_built_once_and_reused() -> None:
    _needs_helper()
    python = default_sandbox_python()
    first = native.spawn_helper(python)
    native.spawn_helper.cache_clear()
    assert native.spawn_helper(python) == first  # found in the cache directory, not rebuilt
    assert first is not None and Path(first).stat().st_size > 0


def test_c_and_python_forks_give_the_same_verdicts(engine: Engine, python_pool: SandboxPool) -> None:
    _needs_helper()
    jobs = _jobs()
    # Lanes 0 and 1 of each: the same two hash seeds do not matter, only the verdicts.
    through_c = engine.pool.run([(job, index % 2) for index, (_, job) in enumerate(jobs)])
    through_python = python_pool.run([(job, index % 2) for index, (_, job) in enumerate(jobs)])
    differences = []
    for (name, _), c_result, python_result in zip(jobs, through_c, through_python, strict=True):
        c_status, python_status = c_result["status"], python_result["status"]
        if c_status != python_status:
            differences.append(f"{name}: C {c_status} ({c_result.get('detail')}) vs Python {python_status}")
        elif c_status == "ok" and name in SAME_VALUE and c_result["canon"] != python_result["canon"]:
            differences.append(f"{name}: C {c_result.get('output')} vs Python {python_result.get('output')}")
    assert not differences, "\n".join(differences)
    for result in through_c:
        assert result["wall_ms"] > 0 and "cpu_ms" in result


def test_a_forged_result_on_any_descriptor_is_refused(engine: Engine, python_pool: SandboxPool) -> None:
    """The child's result must start with a per-job token the program never sees; whichever
    descriptor the result channel is, writing a token-less result to it and exiting fails."""
    program = (
        "import os\ndef f(x):\n    for fd in range(3, 256):\n        try:\n"
        "            os.write(fd, b'AZR-RESULT\\n1:k2:ok')\n        except OSError:\n            pass\n"
        "    os._exit(0)"
    )
    for pool in (engine.pool, python_pool):
        [result] = pool.run([(_job(program, "0"), 0)])
        assert result["status"] == "runtime_error", result


def test_an_unwritable_cache_directory_means_python_forks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the cache directory would go")
    monkeypatch.setenv("AZR_CACHE_DIR", str(blocked / "cache"))
    native.spawn_helper.cache_clear()
    try:
        assert native.spawn_helper(default_sandbox_python()) is None
    finally:
        native.spawn_helper.cache_clear()


def test_the_switch_turns_the_helper_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZR_SANDBOX_SPAWN", "python")
    native.spawn_helper.cache_clear()
    try:
        assert native.spawn_helper(default_sandbox_python()) is None
    finally:
        native.spawn_helper.cache_clear()


def _anonymous_kb(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("RssAnon:")).split()[1])


@pytest.mark.parametrize("which", ["c", "python"])
def test_big_outputs_do_not_stay_resident_in_the_zygote(
    which: str, engine: Engine, python_pool: SandboxPool
) -> None:
    """Every page a zygote holds is copied at each fork: a batch of 100 kB results must not
    leave the zygote bigger (its records and freed buffers are handed back)."""
    if which == "c":
        _needs_helper()
    pool = engine.pool if which == "c" else python_pool
    pid = pool.zygote_info()[0]["pid"]
    small = _job("def f(a):\n    return a", "1")
    pool.run([(small, 0)] * 16)
    before = _anonymous_kb(pid)
    big = _job("def f(a):\n    return ['x' * 100] * 1000", "0")
    for _ in range(4):
        results = pool.run([(big, 0)] * 16)
        assert all(r["status"] == "ok" for r in results)
    pool.run([(small, 0)] * 16)
    assert _anonymous_kb(pid) - before < 1024, (before, _anonymous_kb(pid))
