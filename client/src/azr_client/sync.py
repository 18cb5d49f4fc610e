"""Blocking client: drives the plans of :mod:`azr_client._plans` with httpx.Client, ``time.sleep``
and a small thread pool (the chunks of a big call are sent in parallel)."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import httpx

from azr_client._core import ClientSettings, RetryPolicy
from azr_client._plans import Failure, Operations, Parallel, Plan, Reply, Request, Sleep, no_answer
from azr_client.models import Answer, JobStatus, ValidateResult, ValidateTask, VerifyResult

T = TypeVar("T")


class VerificationClient:
    """Sync client for verification API v1.

    ``validate``/``verify`` never raise because the service is slow, down or overloaded:
    whatever could not be checked before ``deadline_s`` comes back with verdict
    ``sandbox_error``, ``valid``/``correct`` False and a ``detail`` starting with ``client:``.
    Only caller mistakes raise (:class:`AuthenticationError`, duplicate ids).
    """

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        *,
        api_key: str | None = None,
        max_batch: int = 256,
        concurrency: int = 4,
        request_timeout_s: float = 60.0,
        deadline_s: float = 300.0,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.settings = ClientSettings.build(
            base_url, api_key, max_batch, concurrency, request_timeout_s, deadline_s, retry
        )
        self._ops = Operations(self.settings)
        self._http = httpx.Client(
            base_url=self.settings.base_url,
            headers=self.settings.headers(),
            transport=transport,
            timeout=request_timeout_s,
        )

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> VerificationClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ public API (see _plans.Operations)
    def validate(
        self,
        tasks: Sequence[ValidateTask | Mapping[str, Any]],
        repeats: int | None = None,
        timeout_s: float | None = None,
        run: str | None = None,
        step: int | None = None,
    ) -> list[ValidateResult]:
        """``POST /v1/validate``; one result per task, in the order given."""
        return self._drive(self._ops.validate(tasks, repeats, timeout_s, run, step))

    def verify(
        self,
        answers: Sequence[Answer | Mapping[str, Any]],
        run: str | None = None,
        step: int | None = None,
    ) -> list[VerifyResult]:
        """``POST /v1/verify``; one result per answer, in the order given."""
        return self._drive(self._ops.verify(answers, run, step))

    def submit_validate(
        self,
        tasks: Sequence[ValidateTask | Mapping[str, Any]],
        repeats: int | None = None,
        timeout_s: float | None = None,
        run: str | None = None,
        step: int | None = None,
    ) -> str:
        """``POST /v1/validate?wait=false``; returns the job id (no batching)."""
        return self._drive(self._ops.submit_validate(tasks, repeats, timeout_s, run, step))

    def submit_verify(
        self,
        answers: Sequence[Answer | Mapping[str, Any]],
        run: str | None = None,
        step: int | None = None,
    ) -> str:
        """``POST /v1/verify?wait=false``; returns the job id (no batching)."""
        return self._drive(self._ops.submit_verify(answers, run, step))

    def job(self, job_id: str) -> JobStatus:
        """``GET /v1/jobs/{job_id}``."""
        return self._drive(self._ops.job(job_id))

    def wait_job(self, job_id: str, timeout_s: float = 300.0, poll_interval_s: float = 0.2) -> JobStatus:
        """Poll a job until it is finished or failed; raises ``TimeoutError`` after ``timeout_s``."""
        return self._drive(self._ops.wait_job(job_id, timeout_s, poll_interval_s))

    def validate_results(self, status: JobStatus) -> list[ValidateResult]:
        """The typed results of a finished ``submit_validate`` job."""
        return self._ops.validate_results(status)

    def verify_results(self, status: JobStatus) -> list[VerifyResult]:
        """The typed results of a finished ``submit_verify`` job."""
        return self._ops.verify_results(status)

    def healthz(self) -> bool:
        """``GET /healthz`` answered 200 (the process is up)."""
        return self._drive(self._ops.healthz())

    def readyz(self) -> bool:
        """``GET /readyz`` answered 200 (the service can judge work now)."""
        return self._drive(self._ops.readyz())

    # ------------------------------------------------------------------ the driver
    def _drive(self, plan: Plan[T]) -> T:
        outcome: Any = None
        while True:
            try:
                effect = plan.send(outcome)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]
            if isinstance(effect, Request):
                outcome = self._perform(effect)
            elif isinstance(effect, Sleep):
                time.sleep(effect.seconds)
                outcome = None
            elif isinstance(effect, Parallel):
                outcome = self._parallel(effect)
            else:  # pragma: no cover - a plan yielded something that is not an effect
                raise TypeError(f"unknown effect {effect!r}")

    def _parallel(self, effect: Parallel) -> list[Any]:
        if effect.limit <= 1 or len(effect.plans) <= 1:
            return [self._drive(p) for p in effect.plans]
        with ThreadPoolExecutor(max_workers=min(effect.limit, len(effect.plans))) as pool:
            return list(pool.map(self._drive, effect.plans))

    def _perform(self, req: Request) -> Reply | Failure:
        try:
            resp = self._http.request(
                req.method, req.path, json=req.body, params=req.params, timeout=req.timeout_s
            )
        except httpx.TimeoutException as exc:
            return no_answer(exc, req.timeout_s, timed_out=True)
        except httpx.TransportError as exc:
            return no_answer(exc, req.timeout_s, timed_out=False)
        headers = {k.lower(): v for k, v in resp.headers.items()}
        return Reply(resp.status_code, resp.content, headers)
