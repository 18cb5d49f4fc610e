"""Request-level limits, checked before any work is accepted (413/422 naming the field and limit)."""

from __future__ import annotations

from api.core.config import Settings
from api.core.deps import too_large, unprocessable
from api.schemas import ValidateRequest, VerifyRequest


def _text(field: str, text: str, limit: int, setting: str) -> None:
    if len(text) > limit:
        raise too_large(field, len(text), limit, setting + " characters")


def _check_batch(field: str, ids: list[str], timeout_s: float | None, settings: Settings) -> None:
    """What every batch shares: its size, the per-execution timeout, unique ids."""
    if len(ids) > settings.max_tasks_per_request:
        raise too_large(field, len(ids), settings.max_tasks_per_request, f"AZR_MAX_TASKS_PER_REQUEST {field}")
    if timeout_s is not None and timeout_s > settings.max_timeout_s:
        raise unprocessable(
            "timeout_s",
            f"{timeout_s:g} s is over the limit of {settings.max_timeout_s:g} s (AZR_MAX_TIMEOUT_S)",
        )
    seen: set[str] = set()
    for i, item_id in enumerate(ids):
        if item_id in seen:
            raise unprocessable(
                f"{field}[{i}].id", f"duplicate id {item_id!r}; ids must be unique in a request"
            )
        seen.add(item_id)


def check_validate(request: ValidateRequest, settings: Settings) -> None:
    _check_batch("tasks", [t.id for t in request.tasks], request.timeout_s, settings)
    if request.repeats > settings.max_repeats:
        raise unprocessable(
            "repeats", f"{request.repeats} is over the limit of {settings.max_repeats} (AZR_MAX_REPEATS)"
        )
    for i, task in enumerate(request.tasks):
        _text(f"tasks[{i}].program", task.program, settings.max_program_chars, "AZR_MAX_PROGRAM_CHARS")
        if len(task.inputs) > settings.max_inputs_per_task:
            raise too_large(
                f"tasks[{i}].inputs",
                len(task.inputs),
                settings.max_inputs_per_task,
                "AZR_MAX_INPUTS_PER_TASK inputs",
            )
        for j, text in enumerate(task.inputs):
            _text(f"tasks[{i}].inputs[{j}]", text, settings.max_input_chars, "AZR_MAX_INPUT_CHARS")


def check_verify(request: VerifyRequest, settings: Settings) -> None:
    _check_batch("answers", [a.id for a in request.answers], request.timeout_s, settings)
    for i, answer in enumerate(request.answers):
        limit = settings.max_program_chars if answer.task_type == "induction" else settings.max_answer_chars
        _text(f"answers[{i}].answer", answer.answer, limit, "AZR_MAX_ANSWER_CHARS")
        if answer.program is not None:
            _text(
                f"answers[{i}].program", answer.program, settings.max_program_chars, "AZR_MAX_PROGRAM_CHARS"
            )
        for name in ("input", "output"):
            value = getattr(answer, name)
            if value is not None:
                _text(f"answers[{i}].{name}", value, settings.max_answer_chars, "AZR_MAX_ANSWER_CHARS")
        if answer.task_type == "deduction" and answer.output is None:
            raise unprocessable(f"answers[{i}].output", "a deduction answer needs the gold output")
        if answer.task_type == "abduction" and (answer.program is None or answer.output is None):
            raise unprocessable(f"answers[{i}]", "an abduction answer needs 'program' and 'output'")
        if answer.task_type == "induction":
            if not answer.cases:
                raise unprocessable(f"answers[{i}].cases", "an induction answer needs at least one case")
            if len(answer.cases) > settings.max_cases_per_answer:
                raise too_large(
                    f"answers[{i}].cases",
                    len(answer.cases),
                    settings.max_cases_per_answer,
                    "AZR_MAX_CASES_PER_ANSWER cases",
                )
            for j, case in enumerate(answer.cases):
                _text(
                    f"answers[{i}].cases[{j}].input",
                    case.input,
                    settings.max_input_chars,
                    "AZR_MAX_INPUT_CHARS",
                )
                _text(
                    f"answers[{i}].cases[{j}].output",
                    case.output,
                    settings.max_answer_chars,
                    "AZR_MAX_ANSWER_CHARS",
                )
