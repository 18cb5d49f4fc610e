"""The verdict vocabulary of the contract and the result records the engine returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal


class Verdict(StrEnum):
    OK = "ok"
    WRONG = "wrong"
    SYNTAX_ERROR = "syntax_error"
    FORBIDDEN = "forbidden"
    BAD_FORM = "bad_form"
    INVALID_INPUT = "invalid_input"
    NONDETERMINISTIC = "nondeterministic"
    TIMEOUT = "timeout"
    MEMORY_LIMIT = "memory_limit"
    OUTPUT_LIMIT = "output_limit"
    RUNTIME_ERROR = "runtime_error"
    SANDBOX_ERROR = "sandbox_error"


TaskType = Literal["deduction", "abduction", "induction"]


@dataclass(frozen=True)
class Finding:
    """A static-check failure: which verdict, and a message a person can act on."""

    verdict: Verdict
    message: str
    line: int | None = None


@dataclass(frozen=True)
class ValidateTask:
    id: str
    program: str
    inputs: list[str]


@dataclass
class InputOutcome:
    """What running one (program, input) pair `repeats` times concluded."""

    verdict: Verdict
    output: str | None = None
    detail: str = ""
    outputs_seen: list[str] = field(default_factory=list)
    cpu_ms: float = 0.0
    maxrss_kb: int = 0
    line: int | None = None
    cached: bool = False


@dataclass
class ValidateResult:
    id: str
    valid: bool
    verdict: Verdict
    outputs: list[str | None]
    input_verdicts: list[Verdict]
    detail: str = ""
    input_details: list[str] = field(default_factory=list)
    line: int | None = None
    cached: bool = False  # every input's outcome came from the result cache
    # resource figures (the most of any input) and, per input, the distinct outputs seen (audit trail)
    cpu_ms: float = 0.0
    maxrss_kb: int = 0
    input_outputs_seen: list[list[str]] = field(default_factory=list)


@dataclass(frozen=True)
class Case:
    input: str
    output: str


@dataclass(frozen=True)
class Answer:
    id: str
    task_type: TaskType
    answer: str
    program: str | None = None
    input: str | None = None
    output: str | None = None
    cases: tuple[Case, ...] = ()


@dataclass
class VerifyResult:
    id: str
    correct: bool
    verdict: Verdict
    detail: str = ""
    line: int | None = None
    cached: bool = False
