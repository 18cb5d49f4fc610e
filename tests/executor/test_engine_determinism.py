"""Determinism traps: every one is `nondeterministic`; value-equal outputs stay `ok`."""

from __future__ import annotations

import uuid

import pytest
from executor_helpers import validate_one

import executor.engine as engine_module
from executor.engine import Engine
from executor.sandbox.protocol import SandboxJob
from executor.verdicts import ValidateTask, Verdict

WORDS = "[" + ", ".join(repr(f"w{i:02d}x") for i in range(40)) + "]"

TRAPS = {
    # Across processes: differ with the hash seed / the address layout.
    "list-of-set-of-strings": ("def f(words):\n    return list(set(words))", WORDS),
    "join-of-set": ("def f(words):\n    return ''.join(set(words))", WORDS),
    "set-order-via-sorted-key-tie": ("def f(words):\n    return [w for w in set(words)][:5]", WORDS),
    "dict-built-from-set-order": (
        "def f(words):\n    d = {}\n    for i, w in enumerate(set(words)):\n        d[w] = i\n    return d",
        WORDS,
    ),
    "hash-of-str": ("def f(s):\n    return hash(s)", "'hello'"),
    "hash-of-tuple-with-str": ("def f(s):\n    return hash((s, 1)) % 1000003", "'hello'"),
    "id": ("def f(a):\n    return id(a)", "[1, 2]"),
    "id-of-object": ("def f(a):\n    return id(object()) // 16", "1"),
    "default-repr-of-object": (
        "class Box:\n    def __init__(self, v):\n        self.v = v\n\ndef f(v):\n    return Box(v)",
        "3",
    ),
    "repr-of-function": ("def g():\n    pass\n\ndef f(a):\n    return repr(g)", "1"),
    "generator-object": ("def f(a):\n    return (x for x in a)", "[1]"),
    # Within one process: hidden state across the two calls of f.
    "mutable-default-argument": ("def f(a, acc=[]):\n    acc.append(a)\n    return acc", "1"),
    "global-counter": ("count = 0\n\ndef f(a):\n    global count\n    count += 1\n    return a + count", "1"),
    "function-attribute-state": (
        "def f(a):\n    f.calls = getattr(f, 'calls', 0) + 1\n    return f.calls",
        "0",
    ),
    "class-attribute-state": (
        "class C:\n    n = 0\n\ndef f(a):\n    C.n += a\n    return C.n",
        "2",
    ),
    "closure-cache-growth": (
        "seen = {}\n\ndef f(a):\n    seen[len(seen)] = a\n    return len(seen)",
        "'x'",
    ),
}


@pytest.mark.parametrize("name", sorted(TRAPS))
def test_trap_is_nondeterministic(engine: Engine, name: str) -> None:
    program, text = TRAPS[name]
    result = validate_one(engine, program, text)
    assert result.verdict is Verdict.NONDETERMINISTIC, (name, result)
    assert not result.valid and result.outputs == [None]
    assert "different" in result.detail


def test_nondeterministic_detail_shows_the_differing_outputs(engine: Engine) -> None:
    result = validate_one(engine, "def f(a, acc=[]):\n    acc.append(a)\n    return acc", "7")
    assert "[7]" in result.detail and "[7, 7]" in result.detail


STABLE = {
    "set-of-strings": ("def f(words):\n    return set(words)", WORDS, None),
    "frozenset-of-strings": ("def f(words):\n    return frozenset(words)", WORDS, None),
    "dict-of-sets": ("def f(words):\n    return {'k': set(words[:5])}", WORDS, None),
    "sorted-set": ("def f(words):\n    return sorted(set(words))[:3]", WORDS, "['w00x', 'w01x', 'w02x']"),
    "dict": ("def f(a):\n    return {'b': 1, 'a': 2}", "0", "{'b': 1, 'a': 2}"),
    "len-of-set": ("def f(words):\n    return len(set(words))", WORDS, "40"),
    "hash-of-int": ("def f(a):\n    return hash(a)", "12345", "12345"),
    "copied-default": (
        "def f(a, acc=None):\n    acc = list(acc or [])\n    acc.append(a)\n    return acc",
        "1",
        "[1]",
    ),
    "float-arithmetic": ("def f(a):\n    return sum(x / 3 for x in a)", "[1, 2, 3]", "2.0"),
}


@pytest.mark.parametrize("name", sorted(STABLE))
def test_value_equal_outputs_are_ok(engine: Engine, name: str) -> None:
    program, text, expected = STABLE[name]
    result = validate_one(engine, program, text, repeats=4)
    assert result.verdict is Verdict.OK, (name, result)
    if expected is not None:
        assert result.outputs == [expected]


def test_repeats_run_in_processes_with_different_hash_seeds(engine: Engine) -> None:
    seeds = {info["hash_seed_probe"] for info in engine.pool.zygote_info()}
    assert len(seeds) == engine.settings.sandbox.lanes


def _staging_batch(tag: str) -> list[ValidateTask]:
    """Passing, failing and nondeterministic tasks, fresh to the cache (tagged)."""
    kinds = [
        ("ok", "def f(a):\n    return a * 2"),
        ("raises", "def f(a):\n    return a // 0"),
        ("output", "def f(a):\n    return 'x' * 10 ** 7"),
        ("hash", "def f(a):\n    return list({'apple', 'kiwi', 'fig', 'plum', 'pear', 'lime'})"),
    ]
    return [
        ValidateTask(f"{name}-{i}", f"{program}  # {tag} {i}", [str(i)])
        for i in range(6)
        for name, program in kinds
    ]


def test_a_big_call_repeats_only_the_inputs_whose_first_run_passed(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same verdicts as running every repeat at once; failing first runs are not repeated."""
    tasks = _staging_batch(uuid.uuid4().hex)
    before = engine.pool.executions
    staged = engine.validate(tasks, repeats=2)
    staged_executions = engine.pool.executions - before

    monkeypatch.setattr(engine_module, "STAGE_REPEATS_ABOVE", 10**9)
    tasks_again = _staging_batch(uuid.uuid4().hex)
    before = engine.pool.executions
    at_once = engine.validate(tasks_again, repeats=2)
    at_once_executions = engine.pool.executions - before

    assert [r.verdict for r in staged] == [r.verdict for r in at_once]
    verdicts = {r.id.split("-")[0]: r.verdict for r in staged}
    assert verdicts == {
        "ok": Verdict.OK,
        "raises": Verdict.RUNTIME_ERROR,
        "output": Verdict.OUTPUT_LIMIT,
        "hash": Verdict.NONDETERMINISTIC,
    }
    assert at_once_executions == 2 * len(tasks)
    assert staged_executions == 2 * len(tasks) - 12  # the 6 raising and 6 oversized: one run each


def test_a_small_call_starts_every_repeat_at_once(engine: Engine) -> None:
    """Two tasks of two repeats fit the pool: all four runs start together (no staging)."""
    from executor.engine import _ValidationRuns

    tasks = [ValidateTask(f"t{i}", f"def f(a):\n    return a  # {uuid.uuid4().hex}", ["1"]) for i in range(2)]
    limits = engine.settings.limits
    assert not _ValidationRuns(engine, tasks, [], 2, limits, "t").staged
    assert _ValidationRuns(engine, tasks * 5, [], 2, limits, "t").staged


def test_a_small_call_does_not_queue_behind_a_long_execution(engine: Engine) -> None:
    """Its repeats go to the least loaded lanes: one busy zygote does not hold it up."""
    spin = SandboxJob(f"def f(a):\n    while True:\n        pass  # {uuid.uuid4().hex}", "0", 1, 3.0, 4)
    busy_lane = engine.pool.least_loaded_lanes(1)[0]
    spinner = engine.pool.submit(spin, busy_lane, "spinner")
    while engine.pool.busy == 0:  # the spinning job has reached its zygote
        pass
    task = ValidateTask("quick", f"def f(a):\n    return a + 1  # {uuid.uuid4().hex}", ["1"])
    [result] = engine.validate([task], repeats=2)
    assert result.verdict is Verdict.OK and result.outputs == ["2"]
    assert not spinner.done(), "the small call waited for the long execution"
    assert spinner.result().status == "timeout"
