"""`Engine.validate_async`: the same verdicts as `validate`, awaited on an event loop."""

from __future__ import annotations

import asyncio
import uuid

from executor.engine import Engine
from executor.verdicts import ValidateTask, Verdict

PROGRAMS = [
    ("ok", "def f(a):\n    return sorted(a)", "[3, 1, 2]"),
    ("raises", "def f(a):\n    return a[10]", "[1]"),
    ("forbidden", "import os\ndef f(a):\n    return a", "1"),
    ("bad-input", "def f(a):\n    return a", "1); print(2"),
    ("nondeterministic", "def f(a):\n    return list({'x', 'y', 'z', 'w', 'v'})", "0"),
]


def _tasks() -> list[ValidateTask]:
    tag = uuid.uuid4().hex
    return [ValidateTask(name, f"{program}\n# {tag}", [argument]) for name, program, argument in PROGRAMS]


def test_validate_async_gives_what_validate_gives(engine: Engine) -> None:
    through_thread = engine.validate(_tasks(), repeats=2)
    awaited = asyncio.run(engine.validate_async(_tasks(), repeats=2))
    assert [(r.id, r.verdict, r.outputs) for r in awaited] == [
        (r.id, r.verdict, r.outputs) for r in through_thread
    ]
    assert [r.verdict for r in awaited] == [
        Verdict.OK,
        Verdict.RUNTIME_ERROR,
        Verdict.FORBIDDEN,
        Verdict.INVALID_INPUT,
        Verdict.NONDETERMINISTIC,
    ]


def test_validate_async_answers_from_the_cache(engine: Engine) -> None:
    tasks = _tasks()[:1]
    first = asyncio.run(engine.validate_async(tasks))
    again = asyncio.run(engine.validate_async(tasks))
    assert not first[0].cached and again[0].cached and again[0].outputs == first[0].outputs
