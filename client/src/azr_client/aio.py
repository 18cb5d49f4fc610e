"""Asyncio client: the same contract and guarantees as :class:`VerificationClient`,
with the chunks of a big call sent concurrently (bounded by ``concurrency``)."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from azr_client import _core
from azr_client._core import (
    AuthenticationError,
    ClientSettings,
    Kind,
    RetryPolicy,
    ServiceUnavailableError,
)
from azr_client.models import (
    Answer,
    JobStatus,
    ValidateResult,
    ValidateTask,
    VerifyResult,
    answer_to_json,
    task_to_json,
)


class _GaveUp(ServiceUnavailableError):
    def __init__(self, verdict: str, detail: str) -> None:
        super().__init__(detail)
        self.verdict = verdict
        self.detail = detail


class AsyncVerificationClient:
    """Async client for verification API v1 (see :class:`azr_client.VerificationClient`)."""

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
        self.settings = ClientSettings(
            base_url=base_url.rstrip("/"),
            api_key=api_key,
            max_batch=max_batch,
            concurrency=max(1, concurrency),
            request_timeout_s=request_timeout_s,
            deadline_s=deadline_s,
            retry=retry or RetryPolicy(),
        )
        self._http = httpx.AsyncClient(
            base_url=self.settings.base_url,
            headers=self.settings.headers(),
            transport=transport,
            timeout=request_timeout_s,
        )
        self._rng = random.Random()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncVerificationClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ------------------------------------------------------------------ public API
    async def validate(
        self,
        tasks: Sequence[ValidateTask | Mapping[str, Any]],
        repeats: int | None = None,
        timeout_s: float | None = None,
        run: str | None = None,
        step: int | None = None,
    ) -> list[ValidateResult]:
        bodies = [task_to_json(t) for t in tasks]
        extra = {"repeats": repeats, "timeout_s": timeout_s, "run": run, "step": step}
        return await self._batched(_core.VALIDATE, bodies, extra)

    async def verify(
        self,
        answers: Sequence[Answer | Mapping[str, Any]],
        run: str | None = None,
        step: int | None = None,
    ) -> list[VerifyResult]:
        bodies = [answer_to_json(a) for a in answers]
        return await self._batched(_core.VERIFY, bodies, {"run": run, "step": step})

    async def submit_validate(
        self,
        tasks: Sequence[ValidateTask | Mapping[str, Any]],
        repeats: int | None = None,
        timeout_s: float | None = None,
        run: str | None = None,
        step: int | None = None,
    ) -> str:
        bodies = [task_to_json(t) for t in tasks]
        extra = {"repeats": repeats, "timeout_s": timeout_s, "run": run, "step": step}
        return await self._submit(_core.VALIDATE, bodies, extra)

    async def submit_verify(
        self,
        answers: Sequence[Answer | Mapping[str, Any]],
        run: str | None = None,
        step: int | None = None,
    ) -> str:
        bodies = [answer_to_json(a) for a in answers]
        return await self._submit(_core.VERIFY, bodies, {"run": run, "step": step})

    async def job(self, job_id: str) -> JobStatus:
        resp = await self._send("GET", f"/v1/jobs/{job_id}", None, self._deadline())
        _raise_for(resp)
        return JobStatus.from_json(job_id, resp.json())

    async def wait_job(
        self, job_id: str, timeout_s: float = 300.0, poll_interval_s: float = 0.2
    ) -> JobStatus:
        end = time.monotonic() + timeout_s
        while True:
            status = await self.job(job_id)
            if status.done:
                return status
            if time.monotonic() >= end:
                raise TimeoutError(f"job {job_id} still {status.status} after {timeout_s}s")
            await asyncio.sleep(poll_interval_s)

    async def healthz(self) -> bool:
        return await self._probe("/healthz")

    async def readyz(self) -> bool:
        return await self._probe("/readyz")

    # ------------------------------------------------------------------ internals
    def _deadline(self) -> float:
        return time.monotonic() + self.settings.deadline_s

    async def _probe(self, path: str) -> bool:
        try:
            resp = await self._http.get(path, timeout=min(5.0, self.settings.request_timeout_s))
        except httpx.HTTPError:
            return False
        return resp.status_code == 200

    async def _submit(self, kind: Kind, bodies: list[dict[str, Any]], extra: dict[str, Any]) -> str:
        _core.check_unique_ids(bodies)
        body = _core.build_body(kind, bodies, extra)
        resp = await self._send("POST", kind.path, body, self._deadline(), params={"wait": "false"})
        _raise_for(resp)
        return str(resp.json()["job_id"])

    async def _batched(self, kind: Kind, bodies: list[dict[str, Any]], extra: dict[str, Any]) -> list:
        _core.check_unique_ids(bodies)
        if not bodies:
            return []
        deadline = self._deadline()
        sem = asyncio.Semaphore(self.settings.concurrency)

        async def one(chunk: list[dict[str, Any]]) -> list:
            async with sem:
                return await self._run_chunk(kind, chunk, extra, deadline)

        parts = await asyncio.gather(*(one(c) for c in _core.chunked(bodies, self.settings.max_batch)))
        return [r for part in parts for r in part]

    async def _run_chunk(
        self, kind: Kind, chunk: list[dict[str, Any]], extra: dict[str, Any], deadline: float
    ) -> list:
        body = _core.build_body(kind, chunk, extra)
        try:
            resp = await self._send("POST", kind.path, body, deadline)
        except _GaveUp as gave_up:
            return _core.fail_all(kind, chunk, gave_up.verdict, gave_up.detail)
        action = _core.classify(resp.status_code)
        if action == _core.OK:
            try:
                payload = resp.json()
            except ValueError:
                payload = None
            return _core.collect_results(kind, chunk, payload)
        if action == _core.AUTH:
            raise AuthenticationError(_core.error_text(resp.status_code, resp.text))
        if action == _core.SPLIT and len(chunk) > 1:
            left, right = _core.split_halves(chunk)
            return await self._run_chunk(kind, left, extra, deadline) + await self._run_chunk(
                kind, right, extra, deadline
            )
        verdict = "bad_form" if action == _core.SPLIT else "sandbox_error"
        detail = "client: rejected by service: " + _core.error_text(resp.status_code, resp.text)
        return _core.fail_all(kind, chunk, verdict, detail)

    async def _send(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None,
        deadline: float,
        params: dict[str, str] | None = None,
    ) -> httpx.Response:
        policy = self.settings.retry
        last = "no attempt made"
        for attempt in range(policy.max_attempts):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _GaveUp("sandbox_error", f"client: deadline exceeded ({last})")
            timeout = min(self.settings.request_timeout_s, remaining)
            retry_after: float | None = None
            try:
                # wait_for guards against a server that trickles bytes forever.
                resp = await asyncio.wait_for(
                    self._http.request(method, path, json=body, params=params, timeout=timeout),
                    timeout=timeout + 1.0,
                )
            except (httpx.TimeoutException, asyncio.TimeoutError) as exc:
                last = f"request timed out after {timeout:.1f}s ({type(exc).__name__})"
            except httpx.TransportError as exc:
                last = f"connection error: {type(exc).__name__}: {exc}"
            else:
                if _core.classify(resp.status_code) != _core.RETRY:
                    return resp
                last = _core.error_text(resp.status_code, resp.text)
                retry_after = _core.parse_retry_after(resp.headers.get("Retry-After"))
            if attempt + 1 >= policy.max_attempts:
                break
            wait = policy.delay(attempt, retry_after, self._rng)
            if wait >= deadline - time.monotonic():
                raise _GaveUp("sandbox_error", f"client: deadline exceeded ({last})")
            await asyncio.sleep(wait)
        raise _GaveUp("sandbox_error", f"client: gave up after {policy.max_attempts} attempts ({last})")


def _raise_for(resp: httpx.Response) -> None:
    action = _core.classify(resp.status_code)
    if action == _core.AUTH:
        raise AuthenticationError(_core.error_text(resp.status_code, resp.text))
    if action != _core.OK:
        raise ServiceUnavailableError(_core.error_text(resp.status_code, resp.text))
