"""Gold data (a dataset row, a verl ground truth) -> one typed answer to verify.

Bad or missing gold data raises :class:`RewardInputError` naming the field and the shape
expected: a reward function fed the wrong dataset should stop the run with a clear message,
not an ``AttributeError`` deep inside.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from azr_client.models import AbductionAnswer, Answer, Case, DeductionAnswer, InductionAnswer

TASK_TYPES = ("deduction", "abduction", "induction")

#: Alternative names accepted for a gold field (CRUXEval calls the program ``code``).
ALIASES: dict[str, tuple[str, ...]] = {"program": ("program", "code")}

#: What each task type needs (``output`` of deduction: the program and input are optional).
REQUIRED: dict[str, tuple[str, ...]] = {
    "deduction": ("output",),
    "abduction": ("program", "output"),
    "induction": ("cases",),
}

GROUND_TRUTH_EXAMPLE = '{"task_type": "abduction", "program": "def f(a):\\n    return a + 1", "output": "3"}'


class RewardInputError(ValueError):
    """The data handed to a reward function does not have the shape it needs."""


def check_task_type(task_type: Any, where: str) -> str:
    if task_type not in TASK_TYPES:
        raise RewardInputError(
            f"{where}: task_type must be one of {', '.join(TASK_TYPES)}; got {task_type!r}"
        )
    return str(task_type)


def _field(gold: Mapping[str, Any], name: str) -> Any:
    for key in ALIASES.get(name, (name,)):
        value = gold.get(key)
        if value is not None:
            return value
    return None


def _spelled(name: str, noun: str) -> str:
    names = ALIASES.get(name, (name,))
    return " or ".join(f"{n!r}" for n in names) + f" {noun}"


def _cases(value: Any, where: str) -> list[Case]:
    shape = "a list of {'input': ..., 'output': ...} (or its JSON text)"
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise RewardInputError(
                f"{where}: 'cases' must be {shape}; its text is not JSON ({exc})"
            ) from None
    if isinstance(value, (Mapping, str, bytes)) or not hasattr(value, "__iter__"):
        raise RewardInputError(f"{where}: 'cases' must be {shape}; got {type(value).__name__}")
    cases = []
    for i, case in enumerate(value):
        if not isinstance(case, Mapping) or "input" not in case or "output" not in case:
            raise RewardInputError(
                f"{where}: cases[{i}] must be {{'input': ..., 'output': ...}}; got {case!r}"
            )
        cases.append(Case(input=str(case["input"]), output=str(case["output"])))
    if not cases:
        raise RewardInputError(f"{where}: 'cases' is empty; induction needs at least one case")
    return cases


def gold_answer(
    task_type: str, item_id: str, answer: str, gold: Mapping[str, Any], where: str, noun: str
) -> Answer:
    """The answer to verify; ``where``/``noun`` say where the gold came from, for error messages
    (e.g. ``"dataset row 3"``/``"column"`` or ``"ground_truth of sample 0"``/``"key"``)."""
    task_type = check_task_type(task_type, where)
    missing = [name for name in REQUIRED[task_type] if _field(gold, name) is None]
    if missing:
        needs = ", ".join(_spelled(name, noun) for name in missing)
        have = ", ".join(repr(k) for k in gold) or "none"
        raise RewardInputError(f"{where}: a {task_type} task needs the {needs}; {noun}s given: {have}")
    if task_type == "deduction":
        program, given_input = _field(gold, "program"), _field(gold, "input")
        return DeductionAnswer(
            id=item_id,
            output=str(_field(gold, "output")),
            answer=answer,
            program=None if program is None else str(program),
            input=None if given_input is None else str(given_input),
        )
    if task_type == "abduction":
        return AbductionAnswer(
            id=item_id,
            program=str(_field(gold, "program")),
            output=str(_field(gold, "output")),
            answer=answer,
        )
    return InductionAnswer(id=item_id, answer=answer, cases=_cases(_field(gold, "cases"), where))


def parse_ground_truth(ground_truth: Any, where: str) -> dict[str, Any]:
    """verl's ``reward_model.ground_truth``: a dict, or the JSON text of one."""
    value = ground_truth
    if isinstance(ground_truth, (str, bytes)):
        try:
            value = json.loads(ground_truth)
        except ValueError:
            value = ground_truth
    if isinstance(value, Mapping):
        return dict(value)
    seen = f"{type(value).__name__} {value!r}"
    if isinstance(ground_truth, (str, bytes)) and not isinstance(value, (str, bytes)):
        seen += f" (the JSON text {ground_truth!r})"
    raise RewardInputError(
        f"{where}: ground_truth (the dataset's reward_model.ground_truth) must be a dict, or its JSON "
        f"text, with 'task_type' and the gold fields, e.g. {GROUND_TRUTH_EXAMPLE}; got {seen}"
    )
