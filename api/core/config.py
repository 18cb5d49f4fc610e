"""All service settings in one place: environment variables with the AZR_ prefix."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from executor.engine import EngineSettings
from executor.limits import Limits, SizeLimits


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AZR_", env_file=".env", extra="ignore")

    # Where work runs
    redis_url: str | None = Field(None, description="Set to use the RQ queue; unset = embedded sandbox pool.")
    queue_name: str = "azr-verify"
    sandbox_backend: Literal["local", "docker"] = "local"

    # Auth
    api_keys: list[str] = Field(default_factory=list, description="Bearer keys; empty = no auth.")

    # Request limits
    max_tasks_per_request: int = Field(4096, ge=1)
    max_body_bytes: int = Field(32 * 1024 * 1024, ge=1024)
    max_program_chars: int = Field(20_000, ge=1)
    max_input_chars: int = Field(10_000, ge=1)
    max_answer_chars: int = Field(20_000, ge=1)
    max_inputs_per_task: int = Field(64, ge=1)
    max_cases_per_answer: int = Field(64, ge=1)
    max_repeats: int = Field(
        2,
        ge=1,
        le=16,
        description="Most determinism repeats; the pool gets at least this many hash-seed lanes.",
    )
    default_timeout_s: float = Field(5.0, gt=0)
    max_timeout_s: float = Field(30.0, gt=0)
    memory_mb: int = Field(512, ge=64)
    max_output_chars: int = Field(200_000, ge=1)
    request_deadline_s: float = Field(300.0, gt=0, description="Longest a synchronous request waits.")

    # Sandbox pool (embedded mode and workers)
    sandbox_lanes: int = Field(2, ge=1, le=64, description="Distinct hash seeds (see EngineSettings.lanes).")
    sandbox_zygotes_per_lane: int = Field(2, ge=1, le=64)
    sandbox_uid_base: int | None = 61000
    sandbox_fast_slots: int = Field(2, ge=1, le=64, description="Children per zygote at full priority.")
    sandbox_max_live: int = Field(
        24, ge=1, le=1024, description="Live children per zygote, demoted included."
    )
    sandbox_demote_after_ms: float = Field(
        50.0, gt=0, description="A child running longer drops to the lowest priority and frees its fast slot."
    )
    sandbox_allow_missing: list[Literal["landlock", "seccomp", "uid"]] = Field(
        default_factory=list,
        description="Confinement layers the sandbox may start without (an explicit downgrade, named in "
        "/readyz and the log). Empty: a missing layer stops the service.",
    )
    cache_entries: int = Field(100_000, ge=0)

    # Queue mode
    chunk_min_tasks: int = Field(8, ge=1)
    chunk_max_tasks: int = Field(256, ge=1)
    max_queue_depth: int = Field(2000, ge=1, description="Queued chunks above which new work gets 429.")
    max_inflight_executions: int = Field(100_000, ge=1, description="Embedded mode backpressure bound.")
    job_result_ttl_s: int = Field(3600, ge=1)
    job_failure_ttl_s: int = Field(86400, ge=1)
    job_retries: int = Field(3, ge=0)
    worker_heartbeat_grace_s: int = Field(
        10, ge=1, description="A dead worker's job is re-queued after this."
    )
    worker_maintenance_s: int = Field(5, ge=1)
    worker_metrics_port: int = Field(9100, ge=0, description="0 disables the worker's /metrics server.")
    cache_ttl_s: int = Field(7 * 86400, ge=1)

    # Audit trail (api/audit)
    audit_enabled: bool = True
    audit_dir: str = Field(
        ".azr-audit", description="Embedded mode's audit store and queue mode's query index."
    )
    audit_sample_ok: float = Field(0.01, ge=0, le=1, description="Fraction of ok verdicts recorded.")
    audit_sample_wrong: float = Field(0.0, ge=0, le=1, description="Fraction of wrong verdicts recorded.")
    audit_max_records: int = Field(1_000_000, ge=1, description="Retention by count.")
    audit_retention_days: float = Field(14.0, gt=0, description="Retention by age.")
    audit_stream: str = Field("azr:audit", description="Queue mode: the Redis stream of audit records.")
    audit_max_program_chars: int = Field(8000, ge=100)
    audit_max_input_chars: int = Field(2000, ge=100)

    def engine_settings(self) -> EngineSettings:
        return EngineSettings(
            limits=Limits(
                timeout_s=self.default_timeout_s,
                memory_mb=self.memory_mb,
                max_output_chars=self.max_output_chars,
            ),
            sizes=SizeLimits(
                max_program_chars=self.max_program_chars,
                max_input_chars=self.max_input_chars,
                max_answer_chars=self.max_answer_chars,
                max_inputs_per_task=self.max_inputs_per_task,
                max_cases_per_answer=self.max_cases_per_answer,
                max_repeats=self.max_repeats,
            ),
            backend=self.sandbox_backend,
            lanes=max(self.sandbox_lanes, self.max_repeats),
            zygotes_per_lane=self.sandbox_zygotes_per_lane,
            sandbox_uid_base=self.sandbox_uid_base,
            fast_slots=self.sandbox_fast_slots,
            max_live=self.sandbox_max_live,
            demote_after_ms=self.sandbox_demote_after_ms,
            allow_missing=tuple(self.sandbox_allow_missing),
            max_timeout_s=self.max_timeout_s,
            cache_entries=self.cache_entries,
        )


@lru_cache
def get_settings() -> Settings:
    return Settings()
