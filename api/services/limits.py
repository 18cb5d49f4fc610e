"""Request-level limits, checked before any work is accepted (413/422 naming the field and limit)."""

from __future__ import annotations

from api.core.errors import too_large, unprocessable
from api.schemas import ValidateRequest, VerifyRequest
from executor.settings import Settings, variable


def _text(field: str, text: str, limit: int, setting: str) -> None:
    if len(text) > limit:
        raise too_large(field, len(text), limit, setting + " characters")


def _check_batch(field: str, ids: list[str], timeout_s: float | None, settings: Settings) -> None:
    """What every batch shares: its size, the per-execution timeout, unique ids."""
    most, longest = settings.api.max_tasks_per_request, settings.engine.max_timeout_s
    if len(ids) > most:
        raise too_large(field, len(ids), most, f"{variable('api.max_tasks_per_request')} {field}")
    if timeout_s is not None and timeout_s > longest:
        raise unprocessable(
            "timeout_s",
            f"{timeout_s:g} s is over the limit of {longest:g} s ({variable('engine.max_timeout_s')})",
        )
    seen: set[str] = set()
    for i, item_id in enumerate(ids):
        if item_id in seen:
            raise unprocessable(
                f"{field}[{i}].id", f"duplicate id {item_id!r}; ids must be unique in a request"
            )
        seen.add(item_id)


def check_validate(request: ValidateRequest, settings: Settings) -> None:
    sizes = settings.sizes
    _check_batch("tasks", [t.id for t in request.tasks], request.timeout_s, settings)
    if request.repeats > sizes.max_repeats:
        raise unprocessable(
            "repeats",
            f"{request.repeats} is over the limit of {sizes.max_repeats} ({variable('sizes.max_repeats')})",
        )
    for i, task in enumerate(request.tasks):
        _text(
            f"tasks[{i}].program", task.program, sizes.max_program_chars, variable("sizes.max_program_chars")
        )
        if len(task.inputs) > sizes.max_inputs_per_task:
            raise too_large(
                f"tasks[{i}].inputs",
                len(task.inputs),
                sizes.max_inputs_per_task,
                variable("sizes.max_inputs_per_task") + " inputs",
            )
        for j, text in enumerate(task.inputs):
            _text(f"tasks[{i}].inputs[{j}]", text, sizes.max_input_chars, variable("sizes.max_input_chars"))


def check_verify(request: VerifyRequest, settings: Settings) -> None:
    sizes = settings.sizes
    _check_batch("answers", [a.id for a in request.answers], request.timeout_s, settings)
    for i, answer in enumerate(request.answers):
        limit = sizes.max_program_chars if answer.task_type == "induction" else sizes.max_answer_chars
        _text(f"answers[{i}].answer", answer.answer, limit, variable("sizes.max_answer_chars"))
        if answer.program is not None:
            _text(
                f"answers[{i}].program",
                answer.program,
                sizes.max_program_chars,
                variable("sizes.max_program_chars"),
            )
        for name in ("input", "output"):
            value = getattr(answer, name)
            if value is not None:
                _text(
                    f"answers[{i}].{name}", value, sizes.max_answer_chars, variable("sizes.max_answer_chars")
                )
        if answer.task_type == "deduction" and answer.output is None:
            raise unprocessable(f"answers[{i}].output", "a deduction answer needs the gold output")
        if answer.task_type == "abduction" and (answer.program is None or answer.output is None):
            raise unprocessable(f"answers[{i}]", "an abduction answer needs 'program' and 'output'")
        if answer.task_type == "induction":
            if not answer.cases:
                raise unprocessable(f"answers[{i}].cases", "an induction answer needs at least one case")
            if len(answer.cases) > sizes.max_cases_per_answer:
                raise too_large(
                    f"answers[{i}].cases",
                    len(answer.cases),
                    sizes.max_cases_per_answer,
                    variable("sizes.max_cases_per_answer") + " cases",
                )
            for j, case in enumerate(answer.cases):
                _text(
                    f"answers[{i}].cases[{j}].input",
                    case.input,
                    sizes.max_input_chars,
                    variable("sizes.max_input_chars"),
                )
                _text(
                    f"answers[{i}].cases[{j}].output",
                    case.output,
                    sizes.max_answer_chars,
                    variable("sizes.max_answer_chars"),
                )
