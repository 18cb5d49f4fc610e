"""Typed mirrors of the JSON bodies of verification API v1.

Requests are plain dataclasses with a ``to_json`` method; results are parsed with
``from_json``. Anything a caller passes as a ``dict`` is accepted as well, so the client
can be fed straight from a dataset row.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

TaskType = Literal["deduction", "abduction", "induction"]

#: The verdict vocabulary of the contract.
VERDICTS: tuple[str, ...] = (
    "ok",
    "wrong",
    "syntax_error",
    "forbidden",
    "bad_form",
    "invalid_input",
    "nondeterministic",
    "timeout",
    "memory_limit",
    "output_limit",
    "runtime_error",
    "sandbox_error",
)


@dataclass(frozen=True)
class ValidateTask:
    """A proposed program and the inputs to run it on (``POST /v1/validate``)."""

    id: str
    program: str
    inputs: list[str]

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "program": self.program, "inputs": list(self.inputs)}


@dataclass(frozen=True)
class Case:
    """One input/output pair of an induction task."""

    input: str
    output: str

    def to_json(self) -> dict[str, Any]:
        return {"input": self.input, "output": self.output}


@dataclass(frozen=True)
class DeductionAnswer:
    """A predicted output; correct when it equals the gold ``output``."""

    id: str
    output: str
    answer: str
    program: str | None = None
    input: str | None = None
    task_type: Literal["deduction"] = "deduction"

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "task_type": "deduction",
            "output": self.output,
            "answer": self.answer,
        }
        if self.program is not None:
            body["program"] = self.program
        if self.input is not None:
            body["input"] = self.input
        return body


@dataclass(frozen=True)
class AbductionAnswer:
    """A predicted argument list; correct when ``f(answer)`` equals the gold ``output``."""

    id: str
    program: str
    output: str
    answer: str
    task_type: Literal["abduction"] = "abduction"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "task_type": "abduction",
            "program": self.program,
            "output": self.output,
            "answer": self.answer,
        }


@dataclass(frozen=True)
class InductionAnswer:
    """A candidate program; correct when it maps every case's input to its output."""

    id: str
    answer: str
    cases: list[Case]
    task_type: Literal["induction"] = "induction"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "task_type": "induction",
            "answer": self.answer,
            "cases": [c.to_json() for c in self.cases],
        }


Answer = DeductionAnswer | AbductionAnswer | InductionAnswer


@dataclass(frozen=True)
class ValidateResult:
    id: str
    valid: bool
    verdict: str
    outputs: list[str | None] = field(default_factory=list)
    input_verdicts: list[str] = field(default_factory=list)
    detail: str = ""
    #: True when the client made this result up because the service could not be reached
    #: in time (the verdict is then ``sandbox_error`` or ``timeout``).
    client_side: bool = False

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ValidateResult:
        return cls(
            id=str(data["id"]),
            valid=bool(data.get("valid", False)),
            verdict=str(data.get("verdict", "sandbox_error")),
            outputs=list(data.get("outputs") or []),
            input_verdicts=[str(v) for v in data.get("input_verdicts") or []],
            detail=str(data.get("detail") or ""),
        )


@dataclass(frozen=True)
class VerifyResult:
    id: str
    correct: bool
    verdict: str
    detail: str = ""
    client_side: bool = False

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> VerifyResult:
        return cls(
            id=str(data["id"]),
            correct=bool(data.get("correct", False)),
            verdict=str(data.get("verdict", "sandbox_error")),
            detail=str(data.get("detail") or ""),
        )


@dataclass(frozen=True)
class JobStatus:
    job_id: str
    status: str  # queued | running | finished | failed
    results: list[dict[str, Any]] | None = None

    @property
    def done(self) -> bool:
        return self.status in ("finished", "failed")

    @classmethod
    def from_json(cls, job_id: str, data: Mapping[str, Any]) -> JobStatus:
        results = data.get("results")
        return cls(job_id=job_id, status=str(data.get("status", "failed")), results=results)


def task_to_json(task: ValidateTask | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(task, ValidateTask):
        return task.to_json()
    return dict(task)


def answer_to_json(answer: Answer | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(answer, (DeductionAnswer, AbductionAnswer, InductionAnswer)):
        return answer.to_json()
    body = dict(answer)
    if "cases" in body:
        body["cases"] = [c.to_json() if isinstance(c, Case) else dict(c) for c in body["cases"]]
    return body


def failed_validate(item_id: str, verdict: str, detail: str, n_inputs: int) -> ValidateResult:
    return ValidateResult(
        id=item_id,
        valid=False,
        verdict=verdict,
        outputs=[None] * n_inputs,
        input_verdicts=[verdict] * n_inputs,
        detail=detail,
        client_side=True,
    )


def failed_verify(item_id: str, verdict: str, detail: str) -> VerifyResult:
    return VerifyResult(id=item_id, correct=False, verdict=verdict, detail=detail, client_side=True)
