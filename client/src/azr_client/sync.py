"""Blocking client. Chunks of a big call are sent in parallel from a small thread pool."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
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
        self.settings = ClientSettings(
            base_url=base_url.rstrip("/"),
            api_key=api_key,
            max_batch=max_batch,
            concurrency=max(1, concurrency),
            request_timeout_s=request_timeout_s,
            deadline_s=deadline_s,
            retry=retry or RetryPolicy(),
        )
        self._http = httpx.Client(
            base_url=self.settings.base_url,
            headers=self.settings.headers(),
            transport=transport,
            timeout=request_timeout_s,
        )
        self._rng = random.Random()
        self._rng_lock = threading.Lock()

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> VerificationClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ public API
    def validate(
        self,
        tasks: Sequence[ValidateTask | Mapping[str, Any]],
        repeats: int | None = None,
        timeout_s: float | None = None,
        run: str | None = None,
        step: int | None = None,
    ) -> list[ValidateResult]:
        """``POST /v1/validate``; one result per task, in the order given."""
        bodies = [task_to_json(t) for t in tasks]
        extra = {"repeats": repeats, "timeout_s": timeout_s, "run": run, "step": step}
        return self._batched(_core.VALIDATE, bodies, extra)

    def verify(
        self,
        answers: Sequence[Answer | Mapping[str, Any]],
        run: str | None = None,
        step: int | None = None,
    ) -> list[VerifyResult]:
        """``POST /v1/verify``; one result per answer, in the order given."""
        bodies = [answer_to_json(a) for a in answers]
        return self._batched(_core.VERIFY, bodies, {"run": run, "step": step})

    def submit_validate(
        self,
        tasks: Sequence[ValidateTask | Mapping[str, Any]],
        repeats: int | None = None,
        timeout_s: float | None = None,
        run: str | None = None,
        step: int | None = None,
    ) -> str:
        """``POST /v1/validate?wait=false``; returns the job id (no batching)."""
        bodies = [task_to_json(t) for t in tasks]
        extra = {"repeats": repeats, "timeout_s": timeout_s, "run": run, "step": step}
        return self._submit(_core.VALIDATE, bodies, extra)

    def submit_verify(
        self,
        answers: Sequence[Answer | Mapping[str, Any]],
        run: str | None = None,
        step: int | None = None,
    ) -> str:
        """``POST /v1/verify?wait=false``; returns the job id (no batching)."""
        bodies = [answer_to_json(a) for a in answers]
        return self._submit(_core.VERIFY, bodies, {"run": run, "step": step})

    def job(self, job_id: str) -> JobStatus:
        """``GET /v1/jobs/{job_id}``."""
        resp = self._send("GET", f"/v1/jobs/{job_id}", None, self._deadline())
        _raise_for(resp)
        return JobStatus.from_json(job_id, resp.json())

    def wait_job(self, job_id: str, timeout_s: float = 300.0, poll_interval_s: float = 0.2) -> JobStatus:
        """Poll a job until it is finished or failed; raises TimeoutError after ``timeout_s``."""
        end = time.monotonic() + timeout_s
        while True:
            status = self.job(job_id)
            if status.done:
                return status
            if time.monotonic() >= end:
                raise TimeoutError(f"job {job_id} still {status.status} after {timeout_s}s")
            time.sleep(poll_interval_s)

    def validate_results(self, status: JobStatus) -> list[ValidateResult]:
        return [ValidateResult.from_json(r) for r in status.results or []]

    def verify_results(self, status: JobStatus) -> list[VerifyResult]:
        return [VerifyResult.from_json(r) for r in status.results or []]

    def healthz(self) -> bool:
        return self._probe("/healthz")

    def readyz(self) -> bool:
        return self._probe("/readyz")

    # ------------------------------------------------------------------ internals
    def _deadline(self) -> float:
        return time.monotonic() + self.settings.deadline_s

    def _probe(self, path: str) -> bool:
        try:
            resp = self._http.get(path, timeout=min(5.0, self.settings.request_timeout_s))
        except httpx.HTTPError:
            return False
        return resp.status_code == 200

    def _submit(self, kind: Kind, bodies: list[dict[str, Any]], extra: dict[str, Any]) -> str:
        _core.check_unique_ids(bodies)
        body = _core.build_body(kind, bodies, extra)
        resp = self._send("POST", kind.path, body, self._deadline(), params={"wait": "false"})
        _raise_for(resp)
        return str(resp.json()["job_id"])

    def _batched(self, kind: Kind, bodies: list[dict[str, Any]], extra: dict[str, Any]) -> list:
        _core.check_unique_ids(bodies)
        if not bodies:
            return []
        deadline = self._deadline()
        chunks = list(_core.chunked(bodies, self.settings.max_batch))
        if len(chunks) == 1 or self.settings.concurrency == 1:
            parts = [self._run_chunk(kind, c, extra, deadline) for c in chunks]
        else:
            workers = min(self.settings.concurrency, len(chunks))
            with ThreadPoolExecutor(max_workers=workers) as pool:
                parts = list(pool.map(lambda c: self._run_chunk(kind, c, extra, deadline), chunks))
        return [r for part in parts for r in part]

    def _run_chunk(
        self, kind: Kind, chunk: list[dict[str, Any]], extra: dict[str, Any], deadline: float
    ) -> list:
        body = _core.build_body(kind, chunk, extra)
        try:
            resp = self._send("POST", kind.path, body, deadline)
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
            return self._run_chunk(kind, left, extra, deadline) + self._run_chunk(
                kind, right, extra, deadline
            )
        verdict = "bad_form" if action == _core.SPLIT else "sandbox_error"
        detail = "client: rejected by service: " + _core.error_text(resp.status_code, resp.text)
        return _core.fail_all(kind, chunk, verdict, detail)

    def _sleep_time(self, attempt: int, retry_after: float | None) -> float:
        with self._rng_lock:
            return self.settings.retry.delay(attempt, retry_after, self._rng)

    def _send(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None,
        deadline: float,
        params: dict[str, str] | None = None,
    ) -> httpx.Response:
        """Send with retries until a final answer; raises :class:`_GaveUp` when out of time."""
        policy = self.settings.retry
        last = "no attempt made"
        for attempt in range(policy.max_attempts):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _GaveUp("sandbox_error", f"client: deadline exceeded ({last})")
            timeout = min(self.settings.request_timeout_s, remaining)
            retry_after: float | None = None
            try:
                resp = self._http.request(method, path, json=body, params=params, timeout=timeout)
            except httpx.TimeoutException as exc:
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
            wait = self._sleep_time(attempt, retry_after)
            remaining = deadline - time.monotonic()
            if wait >= remaining:
                raise _GaveUp("sandbox_error", f"client: deadline exceeded ({last})")
            time.sleep(wait)
        raise _GaveUp("sandbox_error", f"client: gave up after {policy.max_attempts} attempts ({last})")


def _raise_for(resp: httpx.Response) -> None:
    action = _core.classify(resp.status_code)
    if action == _core.AUTH:
        raise AuthenticationError(_core.error_text(resp.status_code, resp.text))
    if action != _core.OK:
        raise ServiceUnavailableError(_core.error_text(resp.status_code, resp.text))
