"""Grade program synthesis (MBPP+, HumanEval+) through the verification service.

1. Expected outputs: the reference solution runs on every base and plus input through
   ``/v1/validate`` (one repeat). Inputs on which it does not run, or whose output is longer
   than a verify request may carry, are dropped and counted; a problem with no base input
   left is skipped and counted.
2. The policy writes the entry function (greedy), taken from the last ```python block.
3. ``/v1/verify`` (induction) checks the candidate against the base cases and the plus cases,
   at most ``max_cases`` per request item. *base* passes all base cases; *plus* passes base
   and plus, as EvalPlus reports them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from azr_client import Case, InductionAnswer, ValidateTask, VerifyResult

from azr_trainer import parsing, prompts
from azr_trainer.eval.code_sets import CodeProblem, with_entry

#: the service's default limits (executor/limits.py): inputs per task, cases per answer,
#: characters per input, characters per answer text (which also bounds a case's output)
MAX_CASES = 64
MAX_INPUT_CHARS = 10_000
MAX_OUTPUT_CHARS = 20_000


@dataclass(frozen=True)
class CodeEvalResult:
    name: str
    #: problems graded (those whose reference ran on at least one base input)
    n: int
    base_correct: int
    plus_correct: int
    unverified: int = 0
    skipped_problems: int = 0
    dropped_inputs: int = 0


@dataclass(frozen=True)
class GoldCases:
    base: list[Case]
    plus: list[Case]
    dropped: int


def _chunks(items: Sequence[Any], size: int) -> list[list[Any]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def _unverified(r: VerifyResult) -> bool:
    return r.client_side or r.verdict == "sandbox_error"


def gold_cases(problems: Sequence[CodeProblem], verifier: Any, max_cases: int = MAX_CASES) -> list[GoldCases]:
    """The reference solution's outputs on every input, computed by the service."""
    tasks: list[ValidateTask] = []
    where: list[tuple[int, list[tuple[str, bool]]]] = []  # problem index, (input, is_base)
    too_long = [0] * len(problems)
    for pi, p in enumerate(problems):
        tagged = [(i, True) for i in p.base_inputs] + [(i, False) for i in p.plus_inputs]
        kept = [(i, b) for i, b in tagged if len(i) <= MAX_INPUT_CHARS]
        too_long[pi] = len(tagged) - len(kept)
        program = with_entry(p.reference, p.entry_point)
        for k, part in enumerate(_chunks(kept, max_cases)):
            tasks.append(ValidateTask(f"{p.id}#gold{k}", program, [i for i, _ in part]))
            where.append((pi, part))
    results = verifier.validate(tasks, repeats=1, run="eval") if tasks else []
    base: list[list[Case]] = [[] for _ in problems]
    plus: list[list[Case]] = [[] for _ in problems]
    dropped = list(too_long)
    for (pi, part), r in zip(where, results, strict=True):
        for (inp, is_base), out, v in zip(part, r.outputs, r.input_verdicts, strict=False):
            if v == "ok" and out is not None and len(out) <= MAX_OUTPUT_CHARS:
                (base if is_base else plus)[pi].append(Case(input=inp, output=out))
            else:
                dropped[pi] += 1
    return [GoldCases(b, p, d) for b, p, d in zip(base, plus, dropped, strict=True)]


def eval_code(
    name: str,
    problems: Sequence[CodeProblem],
    backend: Any,
    verifier: Any,
    max_new: int,
    max_cases: int = MAX_CASES,
) -> tuple[CodeEvalResult, list[dict[str, Any]]]:
    gold = gold_cases(problems, verifier, max_cases)
    graded = [(p, g) for p, g in zip(problems, gold, strict=True) if g.base]
    gens = backend.generate(
        [prompts.code_prompt(p.prompt, p.entry_point) for p, _ in graded],
        greedy=True,
        max_new_tokens=max_new,
    )
    answers: list[InductionAnswer] = []
    owners: list[tuple[int, bool]] = []  # graded index, is a base chunk
    codes: list[str | None] = []
    for gi, ((p, g), gen) in enumerate(zip(graded, gens, strict=True)):
        code = parsing.extract_answer_loose(gen.text, "python")
        codes.append(code)
        if code is None:
            continue
        program = with_entry(code, p.entry_point)
        for is_base, cases in ((True, g.base), (False, g.plus)):
            for k, part in enumerate(_chunks(cases, max_cases)):
                tag = "base" if is_base else "plus"
                answers.append(InductionAnswer(id=f"{p.id}#{tag}{k}", answer=program, cases=part))
                owners.append((gi, is_base))
    results = verifier.verify(answers, run="eval") if answers else []
    per: list[list[tuple[bool, VerifyResult]]] = [[] for _ in graded]
    for (gi, is_base), r in zip(owners, results, strict=True):
        per[gi].append((is_base, r))
    rows: list[dict[str, Any]] = []
    base_ok = plus_ok = unverified = 0
    for (p, g), gen, code, res in zip(graded, gens, codes, per, strict=True):
        b = bool(res) and all(r.correct for is_b, r in res if is_b)
        both = b and all(r.correct for _, r in res)
        failed = next((r for _, r in res if not r.correct), None)
        unverified += any(_unverified(r) for _, r in res)
        base_ok += b
        plus_ok += both
        rows.append(
            {
                "id": p.id,
                "base": b,
                "plus": both,
                "verdict": "no_code" if code is None else (failed.verdict if failed else "ok"),
                "detail": failed.detail[:300] if failed else "",
                "cases": [len(g.base), len(g.plus)],
                "response": gen.text,
            }
        )
    result = CodeEvalResult(
        name=name,
        n=len(graded),
        base_correct=base_ok,
        plus_correct=plus_ok,
        unverified=unverified,
        skipped_problems=len(problems) - len(graded),
        dropped_inputs=sum(g.dropped for g in gold),
    )
    return result, rows
