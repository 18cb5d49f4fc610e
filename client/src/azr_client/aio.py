"""Asyncio client: drives the same plans as :class:`azr_client.VerificationClient`
(:mod:`azr_client._plans`) with httpx.AsyncClient, ``asyncio.sleep`` and tasks (the chunks of a
big call are sent concurrently, bounded by ``concurrency``)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import httpx

from azr_client._core import ClientSettings, RetryPolicy
from azr_client._plans import Failure, Operations, Parallel, Plan, Reply, Request, Sleep, no_answer
from azr_client.models import Answer, JobStatus, ValidateResult, ValidateTask, VerifyResult

T = TypeVar("T")


class AsyncVerificationClient:
    """Async client for verification API v1: the methods and guarantees of
    :class:`azr_client.VerificationClient`, as coroutines (``validate_results`` and
    ``verify_results`` only parse a finished job and are plain methods in both)."""

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
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = ClientSettings.build(
            base_url, api_key, max_batch, concurrency, request_timeout_s, deadline_s, retry
        )
        self._ops = Operations(self.settings)
        self._http = httpx.AsyncClient(
            base_url=self.settings.base_url,
            headers=self.settings.headers(),
            transport=transport,
            timeout=request_timeout_s,
        )

    # ------------------------------------------------------------------ lifecycle
    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncVerificationClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ------------------------------------------------------------------ public API (see _plans.Operations)
    async def validate(
        self,
        tasks: Sequence[ValidateTask | Mapping[str, Any]],
        repeats: int | None = None,
        timeout_s: float | None = None,
        run: str | None = None,
        step: int | None = None,
    ) -> list[ValidateResult]:
        """``POST /v1/validate``; one result per task, in the order given."""
        return await self._drive(self._ops.validate(tasks, repeats, timeout_s, run, step))

    async def verify(
        self,
        answers: Sequence[Answer | Mapping[str, Any]],
        run: str | None = None,
        step: int | None = None,
    ) -> list[VerifyResult]:
        """``POST /v1/verify``; one result per answer, in the order given."""
        return await self._drive(self._ops.verify(answers, run, step))

    async def submit_validate(
        self,
        tasks: Sequence[ValidateTask | Mapping[str, Any]],
        repeats: int | None = None,
        timeout_s: float | None = None,
        run: str | None = None,
        step: int | None = None,
    ) -> str:
        """``POST /v1/validate?wait=false``; returns the job id (no batching)."""
        return await self._drive(self._ops.submit_validate(tasks, repeats, timeout_s, run, step))

    async def submit_verify(
        self,
        answers: Sequence[Answer | Mapping[str, Any]],
        run: str | None = None,
        step: int | None = None,
    ) -> str:
        """``POST /v1/verify?wait=false``; returns the job id (no batching)."""
        return await self._drive(self._ops.submit_verify(answers, run, step))

    async def job(self, job_id: str) -> JobStatus:
        """``GET /v1/jobs/{job_id}``."""
        return await self._drive(self._ops.job(job_id))

    async def wait_job(
        self, job_id: str, timeout_s: float = 300.0, poll_interval_s: float = 0.2
    ) -> JobStatus:
        """Poll a job until it is finished or failed; raises ``TimeoutError`` after ``timeout_s``."""
        return await self._drive(self._ops.wait_job(job_id, timeout_s, poll_interval_s))

    def validate_results(self, status: JobStatus) -> list[ValidateResult]:
        """The typed results of a finished ``submit_validate`` job."""
        return self._ops.validate_results(status)

    def verify_results(self, status: JobStatus) -> list[VerifyResult]:
        """The typed results of a finished ``submit_verify`` job."""
        return self._ops.verify_results(status)

    async def healthz(self) -> bool:
        """``GET /healthz`` answered 200 (the process is up)."""
        return await self._drive(self._ops.healthz())

    async def readyz(self) -> bool:
        """``GET /readyz`` answered 200 (the service can judge work now)."""
        return await self._drive(self._ops.readyz())

    # ------------------------------------------------------------------ the driver
    async def _drive(self, plan: Plan[T]) -> T:
        outcome: Any = None
        while True:
            try:
                effect = plan.send(outcome)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]
            if isinstance(effect, Request):
                outcome = await self._perform(effect)
            elif isinstance(effect, Sleep):
                await asyncio.sleep(effect.seconds)
                outcome = None
            elif isinstance(effect, Parallel):
                outcome = await self._parallel(effect)
            else:  # pragma: no cover - a plan yielded something that is not an effect
                raise TypeError(f"unknown effect {effect!r}")

    async def _parallel(self, effect: Parallel) -> list[Any]:
        sem = asyncio.Semaphore(max(1, effect.limit))

        async def one(plan: Plan[Any]) -> Any:
            async with sem:
                return await self._drive(plan)

        return list(await asyncio.gather(*(one(p) for p in effect.plans)))

    async def _perform(self, req: Request) -> Reply | Failure:
        try:
            # wait_for guards against a server that trickles bytes forever.
            resp = await asyncio.wait_for(
                self._http.request(
                    req.method, req.path, json=req.body, params=req.params, timeout=req.timeout_s
                ),
                timeout=req.timeout_s + 1.0,
            )
        except (httpx.TimeoutException, asyncio.TimeoutError) as exc:
            return no_answer(exc, req.timeout_s, timed_out=True)
        except httpx.TransportError as exc:
            return no_answer(exc, req.timeout_s, timed_out=False)
        headers = {k.lower(): v for k, v in resp.headers.items()}
        return Reply(resp.status_code, resp.content, headers)
