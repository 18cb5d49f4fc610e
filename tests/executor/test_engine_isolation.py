"""State isolation: every execution is a fresh process; nothing leaks into a later task."""

from __future__ import annotations

from executor_helpers import validate_one

from executor.engine import Engine
from executor.sandbox.protocol import SandboxJob
from executor.verdicts import ValidateTask, Verdict

PI = "import math\n\ndef f(a):\n    return round(math.pi, 5)"


def test_math_pi_tampering_does_not_leak_into_later_tasks(engine: Engine) -> None:
    tamper = "import math\nmath.pi = 3\n\ndef f(a):\n    return math.pi"
    # Same batch and separate batches, on every lane, many times over.
    tasks = [ValidateTask(f"tamper-{i}", tamper + f"  # {i}", ["1"]) for i in range(8)]
    tasks += [ValidateTask(f"pi-{i}", PI + f"  # {i}", ["1"]) for i in range(8)]
    results = {r.id: r for r in engine.validate(tasks, repeats=4)}
    for i in range(8):
        assert results[f"tamper-{i}"].outputs == ["3"]
        assert results[f"pi-{i}"].outputs == ["3.14159"], results[f"pi-{i}"]
    assert validate_one(engine, PI + "  # after", "1").outputs == ["3.14159"]


def test_builtins_tampering_does_not_leak(engine: Engine) -> None:
    tamper = "def f(a):\n    len.__self__.len = lambda x: 42\n    return len([1])"
    validate_one(engine, tamper, "1")  # the attribute is forbidden statically; run it anyway below
    raw = engine.pool.submit(SandboxJob(tamper, "1", calls=1), 0, "tamper").result()
    # The report is made in C: the tampering changes what f computes, in that one child only.
    assert raw.status in ("ok", "runtime_error"), raw
    assert validate_one(engine, "def f(a):\n    return len(a)", "[1, 2, 3]").outputs == ["3"]


def test_module_state_starts_fresh_for_every_input(engine: Engine) -> None:
    program = "cache = []\n\ndef f(a):\n    cache.append(a)\n    return len(cache)"
    result = engine.validate([ValidateTask("s", program, ["1", "2", "3"])])[0]
    # Each call of f sees one append: the two calls within one run differ -> nondeterministic,
    # but never the counts of another input (that would be 3, 4, ...).
    assert result.verdict is Verdict.NONDETERMINISTIC
    assert all("1 then 2" in d for d in result.input_details), result.input_details
