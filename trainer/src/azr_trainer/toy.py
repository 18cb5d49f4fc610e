"""The toy world: a small family of one-line programs on small ints and strings.

It lets a model built from scratch show, in minutes on a CPU, that the self-play loop learns:

* the family (``a + k``, ``a - k``, ``a * k``, ``a % k`` on ints 0..9; ``len(s)``, ``s[:k]``,
  ``s[::-1]`` on short strings over a small alphabet) is small enough to learn, large enough
  that guessing scores little;
* the supervised warm-up teaches the *form* only: proposer demonstrations are random members of
  the family, solver demonstrations are well formed but carry random answers (``any``: any
  value the family produces; ``kind``: the task's program on a random input, so the right type
  and range, right only by chance);
* a fixed held-out set (its own seed) measures greedy accuracy during training.

Pure: nothing here runs a program. The outputs of the family's members are computed from the
family's own Python functions (our code, not the model's); the service still re-checks every
seed and held-out task before they are used.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from azr_trainer import prompts
from azr_trainer.tasks import InductionTask, Triplet

if TYPE_CHECKING:
    from azr_trainer.config import ToyConfig

THOUGHT = " ok"
MESSAGE = "Find the rule."


@dataclass(frozen=True)
class ToyOp:
    """One member template of the family: ``return <expr>``, with a constant ``{k}`` or none."""

    name: str
    expr: str  # "a + {k}"
    kind: str  # "int" | "str"
    fn: Callable[[Any, int], Any]

    @property
    def uses_k(self) -> bool:
        return "{k}" in self.expr

    def program(self, k: int) -> str:
        return f"def f(a):\n    return {self.expr.format(k=k)}"


OPS: dict[str, ToyOp] = {
    op.name: op
    for op in (
        ToyOp("add", "a + {k}", "int", lambda a, k: a + k),
        ToyOp("sub", "a - {k}", "int", lambda a, k: a - k),
        ToyOp("mul", "a * {k}", "int", lambda a, k: a * k),
        ToyOp("mod", "a % {k}", "int", lambda a, k: a % k),
        ToyOp("len", "len(a)", "str", lambda a, k: len(a)),
        ToyOp("head", "a[:{k}]", "str", lambda a, k: a[:k]),
        ToyOp("rev", "a[::-1]", "str", lambda a, k: a[::-1]),
    )
}


@dataclass(frozen=True)
class ToyMember:
    op: ToyOp
    k: int

    @property
    def program(self) -> str:
        return self.op.program(self.k)

    def run(self, value: Any) -> Any:
        return self.op.fn(value, self.k)


class ToyFamily:
    """Random members, inputs and answers of the family chosen by ``ops``."""

    def __init__(
        self,
        ops: Sequence[str],
        ks: Sequence[int] = (1, 2, 3),
        max_int: int = 9,
        alphabet: str = "ab",
        max_len: int = 3,
    ):
        unknown = [o for o in ops if o not in OPS]
        if unknown:
            raise ValueError(f"unknown toy op(s) {unknown}; choose from {sorted(OPS)}")
        if not ops or not ks or any(k < 1 for k in ks):
            raise ValueError("the toy family needs at least one op and constants k >= 1")
        self.members = [ToyMember(OPS[o], k) for o in ops for k in (ks if OPS[o].uses_k else (0,))]
        self.max_int = max_int
        self.alphabet = alphabet
        self.max_len = max_len

    def member(self, rng: random.Random) -> ToyMember:
        return rng.choice(self.members)

    def value(self, kind: str, rng: random.Random) -> Any:
        if kind == "int":
            return rng.randint(0, self.max_int)
        return "".join(rng.choice(self.alphabet) for _ in range(rng.randint(1, self.max_len)))

    def triplet(self, rng: random.Random, step: int = -1) -> Triplet:
        m = self.member(rng)
        x = self.value(m.op.kind, rng)
        return Triplet(m.program, repr(x), repr(m.run(x)), step)

    def induction(self, rng: random.Random, num_inputs: int, step: int = -1) -> InductionTask:
        m = self.member(rng)
        xs = self.distinct_values(m.op.kind, num_inputs, rng)
        return InductionTask(
            m.program, tuple(repr(x) for x in xs), tuple(repr(m.run(x)) for x in xs), MESSAGE, step
        )

    def distinct_values(self, kind: str, n: int, rng: random.Random) -> list[Any]:
        out: list[Any] = []
        for _ in range(50 * n):
            v = self.value(kind, rng)
            if v not in out:
                out.append(v)
            if len(out) == n:
                break
        return out

    def member_of(self, program: str) -> ToyMember | None:
        return next((m for m in self.members if m.program == program), None)

    def random_answer(
        self, task_type: str, task: Triplet | InductionTask, rng: random.Random, mode: str = "any"
    ) -> str:
        """A well-formed answer drawn without looking at the task: what the warm-up shows the
        solver. ``any``: the output (deduction) or input (abduction) of a random member of the
        family on a random input. ``kind``: the task's own program on a random input (the
        right type and range, right only by chance). Induction: a random member."""
        member = self.member_of(task.program) if mode == "kind" else None
        if task_type == "deduction":
            if member is not None:
                return repr(member.run(self.value(member.op.kind, rng)))
            return self.triplet(rng).output
        if task_type == "abduction":
            if member is not None:
                return repr(self.value(member.op.kind, rng))
            return self.triplet(rng).input
        return self.member(rng).program


def family_from_config(cfg: ToyConfig) -> ToyFamily:
    return ToyFamily(cfg.ops, cfg.ks, max_int=cfg.max_int, alphabet=cfg.alphabet, max_len=cfg.max_len)


# ----------------------------------------------------------------------------- responses
def wrap(body: str) -> str:
    return f"{THOUGHT} </think>\n<answer>\n{body}</answer>"


def propose_code_response(family: ToyFamily, rng: random.Random) -> str:
    t = family.triplet(rng)
    return wrap(f"```python\n{t.program}\n```\n```input\n{t.input}\n```\n")


def propose_induction_response(family: ToyFamily, program: str, num_inputs: int, rng: random.Random) -> str:
    member = family.member_of(program)
    kind = member.op.kind if member is not None else "int"
    xs = family.distinct_values(kind, num_inputs, rng)
    body = "".join(f"```input\n{x!r}\n```\n" for x in xs)
    return wrap(body + f"```message\n{MESSAGE}\n```\n")


_SOLVE_LABEL = {"deduction": "output", "abduction": "input", "induction": "python"}


def solve_response(task_type: str, answer: str) -> str:
    return wrap(f"```{_SOLVE_LABEL[task_type]}\n{answer}\n```\n")


def demonstrations(
    family: ToyFamily,
    n: int,
    rng: random.Random,
    num_references: int,
    num_inputs: int,
    style: str = "r1",
    answers: str = "any",
) -> list[tuple[str, str]]:
    """``n`` (prompt, response) pairs over the six task × role cases.

    Proposer responses are random members of the family; solver responses are well formed with
    random answers, so the warm-up teaches the form and none of the answers.
    """
    pairs: list[tuple[str, str]] = []
    kinds = ["pd", "pa", "pi", "sd", "sa", "si"]
    for i in range(n):
        kind = kinds[i % len(kinds)]
        if kind in ("pd", "pa"):
            refs = [family.triplet(rng) for _ in range(num_references)]
            tt = "deduction" if kind == "pd" else "abduction"
            pairs.append((prompts.propose_code_prompt(tt, refs, style), propose_code_response(family, rng)))
        elif kind == "pi":
            program = family.member(rng).program
            pairs.append(
                (
                    prompts.propose_induction_prompt(program, num_inputs, style),
                    propose_induction_response(family, program, num_inputs, rng),
                )
            )
        else:
            tt = {"sd": "deduction", "sa": "abduction", "si": "induction"}[kind]
            task: Triplet | InductionTask
            task = family.induction(rng, num_inputs) if tt == "induction" else family.triplet(rng)
            prompt = prompts.solve_prompt(tt, task, style)
            pairs.append((prompt, solve_response(tt, family.random_answer(tt, task, rng, answers))))
    return pairs


def tokenizer_corpus(family: ToyFamily, num_references: int, num_inputs: int, style: str = "r1") -> list[str]:
    rng = random.Random(1234)
    texts = [p + r for p, r in demonstrations(family, 600, rng, num_references, num_inputs, style)]
    texts.append(prompts.math_prompt("What is $1+1$? The answer is \\boxed{2}."))
    return texts


# ----------------------------------------------------------------------------- task sets
def seed_tasks(
    family: ToyFamily, n: int, num_inputs: int, seed: int
) -> tuple[list[Triplet], list[InductionTask]]:
    """Family members to start the buffers with (the service re-validates them)."""
    rng = random.Random(seed + 7919)
    return [family.triplet(rng) for _ in range(n)], [family.induction(rng, num_inputs) for _ in range(n)]


@dataclass(frozen=True)
class HeldOutTask:
    task_type: str
    task: Triplet | InductionTask


def heldout_set(
    family: ToyFamily, per_type: int, task_types: Sequence[str], num_inputs: int, seed: int
) -> list[HeldOutTask]:
    """A fixed evaluation set: ``per_type`` distinct tasks of each type, from its own seed."""
    rng = random.Random(10_000 + seed)
    out: list[HeldOutTask] = []
    for tt in task_types:
        seen: set[Any] = set()
        for _ in range(100 * per_type):
            task: Triplet | InductionTask
            task = family.induction(rng, num_inputs) if tt == "induction" else family.triplet(rng)
            if task.key() in seen:
                continue
            seen.add(task.key())
            out.append(HeldOutTask(tt, task))
            if len(seen) == per_type:
                break
    return out
