"""Request and response bodies of verification API v1 (../shared/contract)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from executor.settings import EngineSettings
from executor.verdicts import Verdict

Id = Annotated[str, Field(min_length=1, max_length=256, description="Caller's id, echoed back.")]
RunTag = Annotated[str, Field(max_length=200, description="Training run name, recorded in the audit trail.")]


class RunTagged(BaseModel):
    run: RunTag | None = None
    step: Annotated[int, Field(ge=0)] | None = None


class ValidateTaskIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: Id
    program: str = Field(description="Python source defining f.")
    inputs: list[str] = Field(min_length=1, description='Argument lists, e.g. "\'abc\'" or "[1, 2], 3".')


class ValidateRequest(RunTagged):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "tasks": [
                        {
                            "id": "t1",
                            "program": "def f(a):\n    return a[::-1]",
                            "inputs": ["'abc'", "[1, 2]"],
                        }
                    ],
                    "repeats": 2,
                    "timeout_s": 5,
                }
            ]
        },
    )
    tasks: list[ValidateTaskIn] = Field(min_length=1)
    repeats: int = Field(
        EngineSettings().repeats,
        ge=1,
        description="Runs per input in different interpreters; outputs must agree.",
    )
    timeout_s: float | None = Field(
        None, gt=0, description="Per-execution wall-clock limit (capped by the server)."
    )


class ValidateResultOut(BaseModel):
    id: str
    valid: bool
    verdict: Verdict
    outputs: list[str | None]
    input_verdicts: list[Verdict]
    detail: str = ""


class ValidateResponse(BaseModel):
    results: list[ValidateResultOut]


class CaseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    input: str
    output: str


class AnswerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: Id
    task_type: Literal["deduction", "abduction", "induction"]
    answer: str = Field(description="Predicted output (deduction), input (abduction) or program (induction).")
    program: str | None = None
    input: str | None = None
    output: str | None = None
    cases: list[CaseIn] | None = None


class VerifyRequest(RunTagged):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "answers": [
                        {
                            "id": "d1",
                            "task_type": "deduction",
                            "program": "def f(a):\n    return a[::-1]",
                            "input": "'abc'",
                            "output": "'cba'",
                            "answer": "'cba'",
                        }
                    ]
                }
            ]
        },
    )
    answers: list[AnswerIn] = Field(min_length=1)
    timeout_s: float | None = Field(None, gt=0)


class VerifyResultOut(BaseModel):
    id: str
    correct: bool
    verdict: Verdict
    detail: str = ""


class VerifyResponse(BaseModel):
    results: list[VerifyResultOut]


class JobAccepted(BaseModel):
    job_id: str


class JobStatus(BaseModel):
    job_id: str
    kind: Literal["validate", "verify"]
    status: Literal["queued", "running", "finished", "failed"]
    results: list[ValidateResultOut] | list[VerifyResultOut] | None = None
    detail: str = ""


class ErrorOut(BaseModel):
    detail: str
