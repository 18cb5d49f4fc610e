"""Request bodies with known answers, for driving the service and checking what comes back.

* counting programs: `sum(range(n))` under a nonce, so each is new to the result cache and
  its output is known exactly;
* the AZR seed workload (`data/azr_seeds`): validate tasks and deduction/abduction answers;
* hostile programs (escape attempts, bombs, spinners) whose verdict must never be `ok`.

`Expectations` judges a returned result: exactly where the answer is known, else against
the first verdict seen for the same item (a repeat must give the same verdict and outputs).
"""

from __future__ import annotations

import random
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from executor import literals

Body = dict[str, Any]

COUNTING = "def f(n):\n    # {tag}\n    s = 0\n    for i in range(n):\n        s += i\n    return s"

# Escape attempts and resource bombs; with the request's 1 s timeout none may earn `ok`.
HOSTILE: list[tuple[str, str]] = [
    ("import os\ndef f(x):\n    return os.listdir('/')", "1"),
    ("def f(x):\n    return open('/etc/passwd').read()", "1"),
    ("import socket\ndef f(x):\n    return socket.socket()", "1"),
    ("def f(x):\n    return ().__class__.__base__.__subclasses__()", "1"),
    ("def f(x):\n    while True:\n        x += 1", "1"),
    ("def f(x):\n    return len('x' * (10 ** 11))", "1"),
    ("def f(x):\n    return 'y' * (10 ** 7)", "1"),
    ("def f(x):\n    return eval(\"__import__('os').getpid()\")", "1"),
]
HOSTILE_ALLOWED = frozenset(
    {"forbidden", "runtime_error", "timeout", "memory_limit", "output_limit", "bad_form"}
)
LOST = frozenset({"sandbox_error"})
# Verdicts that depend on how fast the machine is at the moment, not only on the program.
RESOURCE_LIMITS = frozenset({"timeout", "output_limit", "memory_limit"})
LOAD_DEPENDENT = "load-dependent: "


def _canonical(text: Any) -> Any:
    return literals.canonical_text(text) if isinstance(text, str) else text


def counting_task(task_id: str, n: int, tag: str) -> tuple[Body, str]:
    """A validate task whose one output is known: (task, expected output)."""
    program = COUNTING.format(tag=tag)
    return {"id": task_id, "program": program, "inputs": [str(n)]}, str(n * (n - 1) // 2)


@dataclass
class Expectations:
    """What each item id must come back as; thread-safe."""

    exact: dict[str, tuple[frozenset[str], list[str] | None]] = field(default_factory=dict)
    seen: dict[str, tuple[str, Any]] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)  # item id -> consistency key
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def expect(self, item_id: str, verdicts: frozenset[str], outputs: list[str] | None = None) -> None:
        with self._lock:
            self.exact[item_id] = (verdicts, outputs)

    def consistent(self, item_id: str, key: str) -> None:
        """The item must give what every other item with the same key gives."""
        with self._lock:
            self.keys[item_id] = key

    def problem(self, result: dict[str, Any]) -> str | None:
        """None when the result is as expected, else what is wrong with it. A verdict that
        differs from an earlier run of the same item only by a resource limit (a slow seed
        that finished once and timed out under load, or hit its output limit before its
        deadline) is `load_dependent`, not wrong: see `is_load_dependent`."""
        item_id = result.get("id", "?")
        verdict = str(result.get("verdict"))
        if verdict in LOST:
            return f"{item_id}: {verdict} ({result.get('detail', '')[:120]})"
        with self._lock:
            exact = self.exact.get(item_id)
            key = self.keys.get(item_id)
            if exact is not None:
                verdicts, outputs = exact
                if verdict not in verdicts:
                    return f"{item_id}: verdict {verdict}, expected one of {sorted(verdicts)}"
                if outputs is not None and result.get("outputs") != outputs:
                    return f"{item_id}: outputs {result.get('outputs')}, expected {outputs}"
                return None
            if key is None:
                return f"{item_id}: not an item this run sent"
            # Outputs as canonical literals: a dict built from a set prints its keys in the hash
            # seed's order, and the same value under another lane's seed is the same output.
            outputs = result.get("outputs")
            if isinstance(outputs, list):
                outputs = [_canonical(o) for o in outputs]
            observed = (verdict, outputs if outputs is not None else result.get("correct"))
            first = self.seen.setdefault(key, observed)
        if first == observed:
            return None
        if first[0] in RESOURCE_LIMITS or verdict in RESOURCE_LIMITS:
            return (
                f"{LOAD_DEPENDENT}{item_id}: {verdict} where an earlier run of the same item gave {first[0]}"
            )
        return f"{item_id}: {observed} where an earlier run of the same item gave {first}"


def is_load_dependent(problem: str) -> bool:
    return problem.startswith(LOAD_DEPENDENT)


def counting_batch(size: int, expect: Expectations, rng: random.Random) -> Body:
    """`size` fresh counting programs (each a cache miss), outputs known."""
    tag = uuid.uuid4().hex
    tasks = []
    for i in range(size):
        task, output = counting_task(f"c-{tag[:12]}-{i}", rng.randrange(20_000, 120_000), f"{tag} {i}")
        expect.expect(task["id"], frozenset({"ok"}), [output])
        tasks.append(task)
    return {"tasks": tasks}


@dataclass(frozen=True)
class Seed:
    program: str
    input: str
    output: str


def load_seeds(limit: int | None = None) -> list[Seed]:
    from executor import datasets

    seeds = [Seed(t.program, t.input, t.output) for t in datasets.azr_seeds()]
    return seeds[:limit] if limit else seeds


class Mix:
    """The soak's request mix: AZR seed validations and verifications (repeats of a seed hit
    the result cache), fresh counting programs (cache misses), and ~5% hostile programs."""

    def __init__(self, seeds: list[Seed], expect: Expectations, rng: random.Random) -> None:
        if not seeds:
            raise ValueError("the mix needs AZR seeds (data/azr_seeds, or AZR_DATA_DIR)")
        self.seeds = seeds
        self.expect = expect
        self.rng = rng
        self.epoch = uuid.uuid4().hex[:8]  # changed by `new_epoch`: every seed misses the cache once more

    def new_epoch(self) -> None:
        self.epoch = uuid.uuid4().hex[:8]

    def _seed_program(self, seed: Seed) -> str:
        return f"{seed.program}\n# soak {self.epoch}"

    def validate(self, size: int) -> Body:
        tasks: list[Body] = []
        request = uuid.uuid4().hex[:10]
        for i in range(size):
            item_id = f"v-{request}-{i}"
            roll = self.rng.random()
            if roll < 0.05:
                program, text = self.rng.choice(HOSTILE)
                self.expect.expect(item_id, HOSTILE_ALLOWED)
                tasks.append({"id": item_id, "program": program, "inputs": [text]})
            elif roll < 0.30:
                task, output = counting_task(item_id, self.rng.randrange(5_000, 60_000), f"{request} {i}")
                self.expect.expect(item_id, frozenset({"ok"}), [output])
                tasks.append(task)
            else:
                seed = self.rng.choice(self.seeds)
                program = self._seed_program(seed)
                self.expect.consistent(item_id, f"validate\0{program}\0{seed.input}")
                tasks.append({"id": item_id, "program": program, "inputs": [seed.input]})
        return {"tasks": tasks, "timeout_s": 1}

    def verify(self, size: int) -> Body:
        answers: list[Body] = []
        request = uuid.uuid4().hex[:10]
        for i in range(size):
            seed = self.rng.choice(self.seeds)
            item_id = f"a-{request}-{i}"
            program = self._seed_program(seed)
            if i % 2:
                answer = {
                    "task_type": "deduction",
                    "program": program,
                    "input": seed.input,
                    "answer": seed.output,
                }
            else:
                answer = {"task_type": "abduction", "program": program, "answer": seed.input}
            answers.append({"id": item_id, "output": seed.output, **answer})
            self.expect.consistent(item_id, f"{answer['task_type']}\0{program}\0{seed.input}")
        return {"answers": answers, "timeout_s": 1}
