"""Resource and size limits for one execution and for what a request may contain (two sections
of the settings tree, `executor.settings`)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Limits(BaseModel):
    """Limits that decide a verdict; part of every cache key."""

    timeout_s: float = Field(
        5.0, gt=0, le=120, description="Wall-clock limit per execution when a request does not say."
    )
    memory_mb: int = Field(512, ge=64, le=16384, description="Address-space limit per execution.")
    max_output_chars: int = Field(200_000, ge=1, description="Longest repr() of a returned value.")
    max_print_chars: int = Field(1_000_000, ge=0, description="Most characters a program may print.")

    def cpu_seconds(self) -> int:
        return int(self.timeout_s) + 1

    def for_job(self) -> dict[str, float | int]:
        return {"timeout_s": self.timeout_s, "cpu_s": self.cpu_seconds(), "memory_mb": self.memory_mb}


class SizeLimits(BaseModel):
    """Static size limits on request text (the program's form)."""

    max_program_chars: int = Field(20_000, ge=1, description="A program (413 above).")
    max_input_chars: int = Field(10_000, ge=1, description="An input (413 above).")
    max_answer_chars: int = Field(20_000, ge=1, description="An answer or a gold output (413 above).")
    max_inputs_per_task: int = Field(64, ge=1, description="Inputs of one task.")
    max_cases_per_answer: int = Field(64, ge=1, description="Cases of one induction answer.")
    max_repeats: int = Field(
        2,
        ge=1,
        le=16,
        description="Most determinism runs a request may ask for, each in its own hash-seed lane.",
    )
