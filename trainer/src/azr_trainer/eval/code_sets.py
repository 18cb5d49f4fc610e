"""EvalPlus-format code benchmarks (MBPP+, HumanEval+): problems, inputs, and the programs the
verification service runs. Pure: nothing here executes code.

Each row holds ``task_id``, ``prompt``, ``entry_point``, ``canonical_solution``,
``base_input`` and ``plus_input`` (lists of JSON argument lists). As in EvalPlus, the expected
outputs are those of the canonical solution (computed by the service, ``/v1/validate``), and a
candidate passes when it returns them on every input (``/v1/verify``, induction). The service
calls ``f``, so both programs get a small ``f`` that calls the benchmark's entry point.
"""

from __future__ import annotations

import ast
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: MBPP+ entry points EvalPlus grades by set equality, and those it grades on "returned
#: something" (a bool is compared as is, anything else as ``is not None``). The same
#: reduction is applied, inside the sandbox, to the canonical and the candidate outputs.
SET_EQUAL = frozenset(
    {
        "similar_elements",
        "find_char_long",
        "common_in_nested_lists",
        "extract_singly",
        "larg_nnum",
        "intersection_array",
        "find_dissimilar",
        "Diff",
    }
)
NOT_NONE = frozenset({"check_str", "text_match_three", "text_starta_endb"})


@dataclass(frozen=True)
class CodeProblem:
    id: str
    #: the benchmark's text: MBPP+ a docstring with one example assert, HumanEval+ a signature
    #: and docstring
    prompt: str
    entry_point: str
    #: the reference program (HumanEval+: prompt + canonical body)
    reference: str
    #: argument-list texts (``f(<input>)``)
    base_inputs: tuple[str, ...]
    plus_inputs: tuple[str, ...]
    #: > 0 where EvalPlus compares floats with a tolerance (the service compares exactly)
    atol: float = 0.0


def arg_text(args: list[Any]) -> str | None:
    """Argument values as the text of one call's arguments; None when a value has no
    literal form (inf/nan)."""
    parts = []
    for a in args:
        if _has_non_finite(a):
            return None
        parts.append(repr(a))
    return ", ".join(parts)


def _has_non_finite(v: Any) -> bool:
    if isinstance(v, float):
        return not math.isfinite(v)
    if isinstance(v, complex):
        return not (math.isfinite(v.real) and math.isfinite(v.imag))
    if isinstance(v, (list, tuple, set, frozenset)):
        return any(_has_non_finite(x) for x in v)
    if isinstance(v, dict):
        return any(_has_non_finite(x) for x in v.values())
    return False


def example_args(prompt: str, entry_point: str) -> list[Any] | None:
    """The argument values of the first example call of ``entry_point`` in the prompt (an
    MBPP ``assert`` or a HumanEval ``>>>`` line); None when there is none or it is not made
    of literals."""
    for line in prompt.splitlines():
        text = line.strip()
        text = text[4:] if text.startswith(">>> ") else text
        if f"{entry_point}(" not in text:
            continue
        try:
            tree = ast.parse(text)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == entry_point:
                try:
                    return [ast.literal_eval(a) for a in node.args]
                except (ValueError, SyntaxError, TypeError):
                    return None
    return None


_CONTAINERS = (list, tuple, set, frozenset)


def conform(value: Any, example: Any) -> Any:
    """Give a JSON value the types of the benchmark's own example argument: JSON has no
    tuples, sets or complex numbers, so EvalPlus stores them as lists and strings. A list
    becomes a tuple/set where the example has one (recursively), and a string becomes a
    complex number where the example has a number."""
    if isinstance(value, str) and isinstance(example, (int, float, complex)):
        if isinstance(example, bool):
            return value
        try:
            return complex(value)
        except ValueError:
            return value
    if isinstance(value, list) and isinstance(example, _CONTAINERS):
        items = [conform(v, _element_example(example, i, v)) for i, v in enumerate(value)]
        if isinstance(example, tuple):
            return tuple(items)
        if isinstance(example, (set, frozenset)):
            try:
                return type(example)(items)
            except TypeError:  # unhashable items: keep the list
                return items
        return items
    if isinstance(value, dict) and isinstance(example, dict) and example:
        first = next(iter(example.values()))
        return {k: conform(v, first) for k, v in value.items()}
    return value


def _element_example(example: Any, i: int, value: Any) -> Any:
    """The example element to copy types from: the one at the same position when it is the
    same kind (container or not), else the first one of that kind; a container nested deeper
    than the example goes takes the example container itself (a tuple of tuples of …)."""
    elems = list(example)
    want = isinstance(value, list)
    if i < len(elems) and isinstance(elems[i], _CONTAINERS) == want:
        return elems[i]
    found = next((e for e in elems if isinstance(e, _CONTAINERS) == want), None)
    return example if found is None and want else found


def _inputs(raw: Any, example: list[Any] | None) -> tuple[str, ...]:
    if not isinstance(raw, list):  # one MBPP+ row stores an empty plus set as {}
        return ()
    texts = []
    for args in raw:
        if not isinstance(args, list):
            continue
        if example is not None and len(example) == len(args):
            args = [conform(a, e) for a, e in zip(args, example, strict=True)]
        text = arg_text(args)
        if text is not None:
            texts.append(text)
    return tuple(texts)


def problem_from_row(row: dict[str, Any], kind: str) -> CodeProblem:
    """``kind``: ``mbpp`` (the canonical solution is a whole program) or ``humaneval``
    (the canonical solution is the body that follows the prompt)."""
    if kind not in ("mbpp", "humaneval"):
        raise ValueError(f"unknown EvalPlus kind {kind!r}")
    canonical = str(row["canonical_solution"])
    reference = str(row["prompt"]) + canonical if kind == "humaneval" else canonical
    entry = str(row["entry_point"])
    example = example_args(str(row["prompt"]), entry)
    return CodeProblem(
        id=str(row["task_id"]),
        prompt=str(row["prompt"]),
        entry_point=entry,
        reference=reference,
        base_inputs=_inputs(row.get("base_input"), example),
        plus_inputs=_inputs(row.get("plus_input"), example),
        atol=float(row.get("atol") or 0.0),
    )


def load_evalplus(path: Path, kind: str, limit: int | None = None) -> list[CodeProblem]:
    if not path.exists():
        raise FileNotFoundError(
            f"{path} not found: see docs/trainer/README.md (Evaluation) for where to get it"
        )
    with open(path, encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    return [problem_from_row(r, kind) for r in rows[:limit]]


def with_entry(program: str, entry_point: str) -> str:
    """``program`` plus the ``f`` the service calls: the entry point, its output made a plain
    literal, and reduced as EvalPlus compares it for the few special MBPP+ tasks."""
    if entry_point == "f" and entry_point not in SET_EQUAL | NOT_NONE:
        return program
    if entry_point in SET_EQUAL:
        ret = "set(out)"
    elif entry_point in NOT_NONE:
        ret = "out if isinstance(out, bool) else out is not None"
    else:
        ret = "out"
    return (
        f"{program.rstrip()}\n\n\n"
        f"{_PLAIN}\n\n"
        f"def f(*args, **kwargs):\n"
        f"    out = _azr_plain({entry_point}(*args, **kwargs))\n"
        f"    return {ret}\n"
    )


#: Dict subclasses (Counter, defaultdict, OrderedDict) and named tuples have no literal
#: repr; EvalPlus compares them by value with ``==``, so both sides are reduced to the plain
#: dict / tuple, which compare the same.
_PLAIN = """def _azr_plain(v):
    if isinstance(v, dict):
        return {k: _azr_plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_azr_plain(x) for x in v]
    if isinstance(v, tuple):
        return tuple(_azr_plain(x) for x in v)
    return v"""
