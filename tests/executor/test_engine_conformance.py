"""Conformance: CRUXEval (all 800) and every AZR seed triplet, read from the configured data path.

CRUXEval: every problem validates `ok`, its gold output is reproduced value-equal, and its
gold output checks as a correct deduction answer. Its gold input checks as a correct abduction
answer, except where that input is not a literal argument list (``''.join(['A'] * 20)``,
``range(100, 120)``, ...): under the contract's amendment of 2026-12-04 an abduction answer is
literals only, so those are ``invalid_input``. The test derives that set itself with
``executor.literals.parse_arguments``, asserts it stays small, and writes it to
artifacts/cruxeval_non_literal_inputs.json.

AZR seeds: every triplet gets a verdict; each row whose verdict or output differs from the
released one is written with its reason to artifacts/azr_seed_differences.{json,md}, and
every reason must be one of the known kinds below: dataset defects, or outputs that the
contract's literal rule makes unjudgeable (never our fault).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

from executor import datasets, literals
from executor.engine import Engine
from executor.verdicts import Answer, Case, ValidateResult, ValidateTask, Verdict

# Why a released seed row may legitimately differ from a correct verifier.
KNOWN_KINDS = {
    "truncated": "AZR stores outputs cut to 400 characters (first 200 + '...' + last 200); ours is the full value",
    "too_large": "the full output exceeds our output limit; AZR stored it truncated",
    "stored_empty": "AZR stored '' for a program that fails or is nondeterministic (its status lacks 'error')",
    "hash_order": "the output depends on set/dict order under the hash seed; the released text is one of several",
    "module_unavailable": "the program imports a third-party module (numpy, sympy, cv2, ...) not installed in the sandbox",
    "forbidden_by_policy": "the program imports or calls something our stricter default policy forbids (os, open, ...)",
    "multi_line_input": "AZR's executor splits inputs by lines, so a multi-line input failed there; it runs here",
    "non_literal_output": "the output's repr is not a literal of builtin types (Counter(...), deque(...), "
    "dict_keys(...), {Ellipsis}, ...), so no answer could be judged against it: validate says bad_form, "
    "and the released text as a deduction answer or gold output is invalid_input",
    "released_expression": "the released output is an expression for the value, not its repr "
    "(dict(a=1, b=2) where f returns {'a': 1, 'b': 2}): not a literal, so it is invalid_input as a "
    "deduction answer; evaluated in the sandbox it equals ours",
}

# CRUXEval problems whose gold input is not a literal argument list are few; more would mean
# that the literal parser rejects something it should accept.
MAX_NON_LITERAL_CRUXEVAL_INPUTS = 20


def _shorten(text: str | None, limit: int = 160) -> str:
    text = "" if text is None else text
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)"


def _is_truncated(released: str) -> bool:
    return len(released) == 403 and released[200:203] == "..."


EQUAL, EXPRESSION = "equal", "expression"


def _value_equal(engine: Engine, items: list[tuple[str, str, str, str]]) -> list[str | None]:
    """(program, input, released, ours) -> how the released text agrees with ours (a literal):

    EQUAL: as a deduction answer it is == to ours (both parsed as literals on the trusted side);
    EXPRESSION: it is not a literal (and neither empty nor cut), but the value it evaluates to
    in the sandbox, as a deduction answer, is == to ours; None: neither."""
    if not items:
        return []
    answers = [
        Answer(str(i), "deduction", released, program, text, ours)
        for i, (program, text, released, ours) in enumerate(items)
    ]
    agreement: list[str | None] = [EQUAL if r.correct else None for r in engine.verify(answers)]
    expressions = [
        i
        for i, (_, _, released, _) in enumerate(items)
        if agreement[i] is None
        and released.strip()
        and not _is_truncated(released)
        and not literals.is_literal(released)
    ]
    evaluated = engine.validate(
        [ValidateTask(str(i), f"def f():\n    return (\n{items[i][2]}\n)\n", [""]) for i in expressions],
        repeats=1,
    )
    values = [
        (i, result.outputs[0]) for i, result in zip(expressions, evaluated, strict=True) if result.valid
    ]
    checked = engine.verify(
        [Answer(str(i), "deduction", value or "", None, None, items[i][3]) for i, value in values]
    )
    for (i, _), result in zip(values, checked, strict=True):
        if result.correct:
            agreement[i] = EXPRESSION
    return agreement


def classify(
    released: str,
    input_text: str,
    outcome_verdict: Verdict,
    output: str | None,
    detail: str,
    agreement: str | None,
) -> str | None:
    """None when we agree with the released row, else the kind of difference ("unexplained" if none fits)."""
    if outcome_verdict is Verdict.BAD_FORM and "not a literal" in detail:
        # Ours is not a literal, so the released text (the same repr, or a cut of it) cannot be either.
        return "unexplained" if literals.is_literal(released) else "non_literal_output"
    if outcome_verdict is Verdict.OK:
        assert output is not None
        if output == released or agreement == EQUAL:
            return None
        if agreement == EXPRESSION:
            return "released_expression"
        if _is_truncated(released):
            return (
                "truncated"
                if output.startswith(released[:200]) and output.endswith(released[203:])
                else "unexplained"
            )
        if released == "" and "\n" in input_text:
            return "multi_line_input"
        if released and sorted(output) == sorted(released):
            return "hash_order"
        return "unexplained"
    if outcome_verdict is Verdict.FORBIDDEN and ("import of" in detail or "use of" in detail):
        return "forbidden_by_policy"
    if outcome_verdict is Verdict.RUNTIME_ERROR and "ModuleNotFoundError" in detail:
        return "module_unavailable"
    if released == "" and outcome_verdict in (
        Verdict.RUNTIME_ERROR,
        Verdict.NONDETERMINISTIC,
        Verdict.TIMEOUT,
    ):
        return "stored_empty"
    if outcome_verdict is Verdict.NONDETERMINISTIC:
        return "hash_order"
    if outcome_verdict in (Verdict.OUTPUT_LIMIT, Verdict.MEMORY_LIMIT) and _is_truncated(released):
        return "too_large"
    return "unexplained"


# ---------------------------------------------------------------------------- CRUXEval


def _non_literal_inputs(problems: list[datasets.Triplet]) -> dict[str, dict[str, str]]:
    """The problems whose gold input is not a literal argument list, with the parser's reason."""
    found: dict[str, dict[str, str]] = {}
    for problem in problems:
        try:
            literals.parse_arguments(problem.input)
        except literals.LiteralError as exc:
            found[problem.id] = {"input": problem.input, "reason": str(exc)}
    return found


def test_cruxeval_all_800_validate_and_check(engine: Engine, data_root: Path, artifacts_dir: Path) -> None:
    problems = datasets.cruxeval(data_root)
    assert len(problems) == 800
    non_literal = _non_literal_inputs(problems)
    path = artifacts_dir / "cruxeval_non_literal_inputs.json"
    path.write_text(json.dumps(non_literal, indent=2, ensure_ascii=False))
    print(f"\n{len(non_literal)} CRUXEval gold inputs are not literal argument lists (written to {path}):")
    for problem_id, row in non_literal.items():
        print(f"  {problem_id}: {row['input']}")
    assert 0 < len(non_literal) <= MAX_NON_LITERAL_CRUXEVAL_INPUTS, sorted(non_literal)
    results = engine.validate([ValidateTask(p.id, p.program, [p.input]) for p in problems], repeats=2)
    failing = [
        (p.id, r.verdict.value, r.detail[:200]) for p, r in zip(problems, results, strict=True) if not r.valid
    ]
    assert failing == [], f"{len(failing)} CRUXEval problems do not validate: {failing[:10]}"

    answers: list[Answer] = []
    for problem, result in zip(problems, results, strict=True):
        ours = result.outputs[0]
        assert ours is not None
        # Gold output reproduced, value-equal: the gold output as a deduction answer against ours.
        answers.append(
            Answer(
                f"{problem.id}/reproduced", "deduction", problem.output, problem.program, problem.input, ours
            )
        )
        # The gold input as an abduction answer, and the gold output as a deduction answer.
        answers.append(
            Answer(
                f"{problem.id}/abduction", "abduction", problem.input, problem.program, None, problem.output
            )
        )
        answers.append(
            Answer(
                f"{problem.id}/deduction",
                "deduction",
                problem.output,
                problem.program,
                problem.input,
                problem.output,
            )
        )
    checked = engine.verify(answers)
    assert len(checked) == 3 * len(problems)
    refused = {
        r.id.removesuffix("/abduction"): r for r in checked if r.id.endswith("/abduction") and not r.correct
    }
    wrong = [
        (r.id, r.verdict.value, r.detail[:200])
        for r in checked
        if not r.correct and r.id.removesuffix("/abduction") not in non_literal
    ]
    assert wrong == [], f"{len(wrong)} CRUXEval checks failed: {wrong[:10]}"
    # Exactly the non-literal gold inputs are refused as abduction answers, for that reason.
    assert sorted(refused) == sorted(non_literal)
    for problem_id, result in refused.items():
        assert result.verdict is Verdict.INVALID_INPUT, (problem_id, result)
        assert "not a literal argument list" in result.detail, (problem_id, result.detail)


# ---------------------------------------------------------------------------- AZR seeds


def _seed_rows(engine: Engine, root: Path) -> tuple[list[dict], int]:
    """Deduction/abduction seed triplets: validate each, classify each difference."""
    seeds = datasets.azr_seeds(root)
    results = engine.validate([ValidateTask(s.id, s.program, [s.input]) for s in seeds], repeats=2)
    assert all(r.verdict is not Verdict.SANDBOX_ERROR for r in results)
    ok_pairs = [
        (s.program, s.input, s.output, r.outputs[0])
        for s, r in zip(seeds, results, strict=True)
        if r.verdict is Verdict.OK and r.outputs[0] != s.output
    ]
    equal = dict(zip([(p, i) for p, i, _, _ in ok_pairs], _value_equal(engine, ok_pairs), strict=True))
    rows = []
    non_literal: list[tuple[int, str]] = []
    for seed, result in zip(seeds, results, strict=True):
        output = result.outputs[0]
        kind = classify(
            seed.output,
            seed.input,
            result.verdict,
            output,
            result.detail,
            equal.get((seed.program, seed.input)),
        )
        if kind is not None:
            if kind == "non_literal_output":
                non_literal.append((len(rows), seed.output))
            rows.append(
                {
                    "id": seed.id,
                    "kind": kind,
                    "verdict": result.verdict.value,
                    "detail": _shorten(result.detail, 300),
                    "released": _shorten(seed.output),
                    "ours": _shorten(output),
                    "input": _shorten(seed.input, 80),
                }
            )
    _check_non_literal_deductions(engine, rows, non_literal)
    return rows, len(seeds)


def _check_non_literal_deductions(engine: Engine, rows: list[dict], items: list[tuple[int, str]]) -> None:
    """A released output that is not a literal can be neither a deduction answer nor a gold output:
    both ways it is invalid_input. A row where it is anything else is unexplained."""
    answers = [
        Answer(f"{index}/{way}", "deduction", released, None, None, gold)
        for index, released in items
        for way, gold in (("as answer", "None"), ("as gold", released))
    ]
    verdicts = {r.id: r for r in engine.verify(answers)} if answers else {}
    for index, _ in items:
        for way, what in (("as answer", "the answer"), ("as gold", "the gold output")):
            result = verdicts[f"{index}/{way}"]
            if result.verdict is not Verdict.INVALID_INPUT or f"{what} is not a literal" not in result.detail:
                rows[index]["kind"] = "unexplained"
                rows[index]["detail"] += (
                    f" | released text {way}: {result.verdict.value}: {result.detail[:200]}"
                )


def _induction_rows(engine: Engine, root: Path) -> tuple[list[dict], int]:
    """Induction seeds: the snippet as an induction answer against its own inputs/outputs."""
    seeds = datasets.azr_induction_seeds(root)
    verdicts = engine.verify(
        [
            Answer(
                s.id,
                "induction",
                s.program,
                cases=tuple(Case(i, o) for i, o in zip(s.inputs, s.outputs, strict=True)),
            )
            for s in seeds
        ]
    )
    assert all(v.verdict is not Verdict.SANDBOX_ERROR for v in verdicts)
    failing = [(s, v) for s, v in zip(seeds, verdicts, strict=True) if not v.correct]
    # Explain each failing row case by case: run the snippet on every input and compare.
    validations: list[ValidateResult] = engine.validate(
        [ValidateTask(s.id, s.program, list(s.inputs)) for s, _ in failing], repeats=2
    )
    pairs, where = [], []
    for (seed, _), validation in zip(failing, validations, strict=True):
        for index, (text, released) in enumerate(zip(seed.inputs, seed.outputs, strict=True)):
            ours = validation.outputs[index] if index < len(validation.outputs) else None
            if (
                validation.input_verdicts
                and validation.input_verdicts[index] is Verdict.OK
                and ours != released
            ):
                pairs.append((seed.program, text, released, ours))
                where.append((seed.id, index))
    equal = dict(zip(where, _value_equal(engine, pairs), strict=True))
    rows = []
    for (seed, verdict), validation in zip(failing, validations, strict=True):
        kinds = []
        for index, (text, released) in enumerate(zip(seed.inputs, seed.outputs, strict=True)):
            if validation.verdict is Verdict.FORBIDDEN or not validation.input_verdicts:
                case_verdict, ours, detail = validation.verdict, None, validation.detail
            else:
                case_verdict = validation.input_verdicts[index]
                ours = validation.outputs[index]
                detail = validation.input_details[index] if validation.input_details else validation.detail
            kind = classify(released, text, case_verdict, ours, detail, equal.get((seed.id, index)))
            if kind is not None:
                kinds.append(f"case {index}: {kind}")
        if not kinds:
            # Every case agreed when re-run: the failing run saw another hash seed. The verdict's
            # own detail then shows the same characters in another order.
            match = re.search(r"expected (.*), got (.*)$", verdict.detail, re.S)
            if verdict.verdict is Verdict.WRONG and match and sorted(match[1]) == sorted(match[2]):
                kinds.append("failing case: hash_order")
            else:
                kinds.append("unexplained: every case agrees but the induction answer failed")
        rows.append(
            {
                "id": seed.id,
                "kind": sorted({k.split(": ", 1)[1] for k in kinds}),
                "cases": kinds,
                "verdict": verdict.verdict.value,
                "detail": _shorten(verdict.detail, 300),
            }
        )
    return rows, len(seeds)


def _write_report(
    folder: Path, seed_rows: list[dict], seed_total: int, ind_rows: list[dict], ind_total: int
) -> Path:
    report = {
        "kinds": KNOWN_KINDS,
        "deduction_abduction": {"total": seed_total, "differing": seed_rows},
        "induction": {"total": ind_total, "differing": ind_rows},
    }
    (folder / "azr_seed_differences.json").write_text(json.dumps(report, indent=2, ensure_ascii=False))
    lines = ["# AZR seed triplets that differ from the released outputs", ""]
    lines += [f"- **{kind}**: {why}" for kind, why in KNOWN_KINDS.items()]
    lines += [
        "",
        f"## Deduction/abduction seeds: {len(seed_rows)} of {seed_total} differ",
        "",
        "| id | kind | our verdict | released | ours / detail |",
        "|---|---|---|---|---|",
    ]
    for row in seed_rows:
        ours = row["ours"] or row["detail"]
        lines.append(
            f"| {row['id']} | {row['kind']} | {row['verdict']} | `{row['released'][:60]!r}` | `{ours[:90]!r}` |"
        )
    lines += [
        "",
        f"## Induction seeds: {len(ind_rows)} of {ind_total} fail as induction answers",
        "",
        "| id | kinds | verdict | cases |",
        "|---|---|---|---|",
    ]
    for row in ind_rows:
        lines.append(
            f"| {row['id']} | {', '.join(row['kind'])} | {row['verdict']} | {'; '.join(row['cases'])} |"
        )
    path = folder / "azr_seed_differences.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_azr_seed_triplets_get_verdicts_and_every_difference_is_explained(
    engine: Engine, data_root: Path, artifacts_dir: Path
) -> None:
    seed_rows, seed_total = _seed_rows(engine, data_root)
    ind_rows, ind_total = _induction_rows(engine, data_root)
    path = _write_report(artifacts_dir, seed_rows, seed_total, ind_rows, ind_total)
    print(
        f"\nAZR seed differences written to {path}: {len(seed_rows)}/{seed_total} deduction/abduction rows, "
        f"{len(ind_rows)}/{ind_total} induction rows; kinds: {Counter(r['kind'] for r in seed_rows)}"
    )

    assert seed_total >= 256 and ind_total >= 256
    unexplained = [r for r in seed_rows if r["kind"] not in KNOWN_KINDS]
    assert unexplained == [], f"seed rows that differ for no known reason: {unexplained}"
    unexplained_ind = [r for r in ind_rows if any(k not in KNOWN_KINDS for k in r["kind"])]
    assert unexplained_ind == [], f"induction rows that differ for no known reason: {unexplained_ind}"
    # The defects are a small minority; a broad regression would show here.
    assert len(seed_rows) <= 0.08 * seed_total, Counter(r["kind"] for r in seed_rows)
    assert len(ind_rows) <= 0.10 * ind_total
