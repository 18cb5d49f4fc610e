"""Every client operation, written once, without I/O (sans-IO).

An operation is a *plan*: a generator that yields effects and receives their outcomes.

- ``yield Request(...)`` sends one HTTP request; the driver sends back a :class:`Reply`
  or, when no answer came (timeout, refused connection), a :class:`Failure`.
- ``yield Sleep(s)`` waits ``s`` seconds; the driver sends back ``None``.
- ``yield Parallel(plans, limit)`` runs sub-plans with at most ``limit`` at a time; the driver
  sends back their results in the order given.

The sync client (:mod:`azr_client.sync`) drives plans with httpx.Client, ``time.sleep`` and
threads; the async client (:mod:`azr_client.aio`) with httpx.AsyncClient, ``asyncio.sleep``
and tasks. Retries, deadlines, batching, bisection and parsing live here only, so the two
clients cannot behave differently.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from azr_client import _core
from azr_client._core import AuthenticationError, ClientSettings, Kind, ServiceUnavailableError
from azr_client.models import (
    Answer,
    JobStatus,
    ValidateResult,
    ValidateTask,
    VerifyResult,
    answer_to_json,
    task_to_json,
)

T = TypeVar("T")


# --------------------------------------------------------------------------- effects
@dataclass(frozen=True)
class Request:
    method: str
    path: str
    body: dict[str, Any] | None
    params: dict[str, str] | None
    timeout_s: float


@dataclass(frozen=True)
class Reply:
    """A complete HTTP answer (any status). Header names are lower-case."""

    status: int
    content: bytes
    headers: Mapping[str, str]

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        """The body as JSON; raises ``ValueError`` when it is not JSON."""
        return json.loads(self.content)


@dataclass(frozen=True)
class Failure:
    """No answer: the request timed out (``timed_out``) or the connection failed."""

    timed_out: bool
    message: str


@dataclass(frozen=True)
class Sleep:
    seconds: float


@dataclass(frozen=True)
class Parallel:
    plans: list[Plan[Any]]
    limit: int


Effect = Request | Sleep | Parallel
Plan = Generator[Effect, Any, T]


class GaveUp(ServiceUnavailableError):
    """Raised inside plans when a request ran out of attempts or time."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def _raise_for(reply: Reply) -> None:
    action = _core.classify(reply.status)
    if action == _core.AUTH:
        raise AuthenticationError(_core.error_text(reply.status, reply.text))
    if action != _core.OK:
        raise ServiceUnavailableError(_core.error_text(reply.status, reply.text))


# --------------------------------------------------------------------------- operations
class Operations:
    """The client's operations as plans, bound to one client's settings (and its jitter RNG).

    The public methods here are exactly the public API of both clients, with the same
    parameters; the clients only drive them (``tests/client/test_parity.py`` checks this).
    """

    #: Operations that only parse what the caller already has: plain methods in both clients.
    PURE = ("validate_results", "verify_results")

    def __init__(self, settings: ClientSettings) -> None:
        self.settings = settings
        self._rng = random.Random()
        self._rng_lock = threading.Lock()

    # ------------------------------------------------------------------ public API
    def validate(
        self,
        tasks: Sequence[ValidateTask | Mapping[str, Any]],
        repeats: int | None = None,
        timeout_s: float | None = None,
        run: str | None = None,
        step: int | None = None,
    ) -> Plan[list[ValidateResult]]:
        """``POST /v1/validate``; one result per task, in the order given."""
        bodies = [task_to_json(t) for t in tasks]
        extra = {"repeats": repeats, "timeout_s": timeout_s, "run": run, "step": step}
        return self._batched(_core.VALIDATE, bodies, extra)

    def verify(
        self,
        answers: Sequence[Answer | Mapping[str, Any]],
        run: str | None = None,
        step: int | None = None,
    ) -> Plan[list[VerifyResult]]:
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
    ) -> Plan[str]:
        """``POST /v1/validate?wait=false``; returns the job id (no batching)."""
        bodies = [task_to_json(t) for t in tasks]
        extra = {"repeats": repeats, "timeout_s": timeout_s, "run": run, "step": step}
        return self._submit(_core.VALIDATE, bodies, extra)

    def submit_verify(
        self,
        answers: Sequence[Answer | Mapping[str, Any]],
        run: str | None = None,
        step: int | None = None,
    ) -> Plan[str]:
        """``POST /v1/verify?wait=false``; returns the job id (no batching)."""
        bodies = [answer_to_json(a) for a in answers]
        return self._submit(_core.VERIFY, bodies, {"run": run, "step": step})

    def job(self, job_id: str) -> Plan[JobStatus]:
        """``GET /v1/jobs/{job_id}``."""
        reply = yield from self._send("GET", f"/v1/jobs/{job_id}", None, self._deadline())
        _raise_for(reply)
        return JobStatus.from_json(job_id, reply.json())

    def wait_job(
        self, job_id: str, timeout_s: float = 300.0, poll_interval_s: float = 0.2
    ) -> Plan[JobStatus]:
        """Poll a job until it is finished or failed; raises ``TimeoutError`` after ``timeout_s``."""
        end = time.monotonic() + timeout_s
        while True:
            status = yield from self.job(job_id)
            if status.done:
                return status
            if time.monotonic() >= end:
                raise TimeoutError(f"job {job_id} still {status.status} after {timeout_s}s")
            yield Sleep(poll_interval_s)

    def validate_results(self, status: JobStatus) -> list[ValidateResult]:
        """The typed results of a finished ``submit_validate`` job."""
        return [ValidateResult.from_json(r) for r in status.results or []]

    def verify_results(self, status: JobStatus) -> list[VerifyResult]:
        """The typed results of a finished ``submit_verify`` job."""
        return [VerifyResult.from_json(r) for r in status.results or []]

    def healthz(self) -> Plan[bool]:
        """``GET /healthz`` answered 200 (the process is up)."""
        return self._probe("/healthz")

    def readyz(self) -> Plan[bool]:
        """``GET /readyz`` answered 200 (the service can judge work now)."""
        return self._probe("/readyz")

    # ------------------------------------------------------------------ internals
    def _deadline(self) -> float:
        return time.monotonic() + self.settings.deadline_s

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        with self._rng_lock:
            return self.settings.retry.delay(attempt, retry_after, self._rng)

    def _probe(self, path: str) -> Plan[bool]:
        outcome = yield Request("GET", path, None, None, min(5.0, self.settings.request_timeout_s))
        return isinstance(outcome, Reply) and outcome.status == 200

    def _submit(self, kind: Kind, bodies: list[dict[str, Any]], extra: dict[str, Any]) -> Plan[str]:
        _core.check_unique_ids(bodies)
        body = _core.build_body(kind, bodies, extra)
        reply = yield from self._send("POST", kind.path, body, self._deadline(), {"wait": "false"})
        _raise_for(reply)
        return str(reply.json()["job_id"])

    def _batched(self, kind: Kind, bodies: list[dict[str, Any]], extra: dict[str, Any]) -> Plan[list[Any]]:
        _core.check_unique_ids(bodies)
        if not bodies:
            return []
        deadline = self._deadline()
        chunks = list(_core.chunked(bodies, self.settings.max_batch))
        if len(chunks) == 1:
            return (yield from self._run_chunk(kind, chunks[0], extra, deadline))
        plans = [self._run_chunk(kind, c, extra, deadline) for c in chunks]
        parts = yield Parallel(plans, self.settings.concurrency)
        return [r for part in parts for r in part]

    def _run_chunk(
        self, kind: Kind, chunk: list[dict[str, Any]], extra: dict[str, Any], deadline: float
    ) -> Plan[list[Any]]:
        body = _core.build_body(kind, chunk, extra)
        try:
            reply = yield from self._send("POST", kind.path, body, deadline)
        except GaveUp as gave_up:
            return _core.fail_all(kind, chunk, "sandbox_error", gave_up.detail)
        action = _core.classify(reply.status)
        if action == _core.OK:
            try:
                payload = reply.json()
            except ValueError:
                payload = None
            return _core.collect_results(kind, chunk, payload)
        if action == _core.AUTH:
            raise AuthenticationError(_core.error_text(reply.status, reply.text))
        if action == _core.SPLIT and len(chunk) > 1:
            left, right = _core.split_halves(chunk)
            first = yield from self._run_chunk(kind, left, extra, deadline)
            second = yield from self._run_chunk(kind, right, extra, deadline)
            return first + second
        verdict = "bad_form" if action == _core.SPLIT else "sandbox_error"
        detail = "client: rejected by service: " + _core.error_text(reply.status, reply.text)
        return _core.fail_all(kind, chunk, verdict, detail)

    def _send(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None,
        deadline: float,
        params: dict[str, str] | None = None,
    ) -> Plan[Reply]:
        """Send with retries until a final answer; raises :class:`GaveUp` when out of attempts or time."""
        policy = self.settings.retry
        last = "no attempt made"
        for attempt in range(policy.max_attempts):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise GaveUp(f"client: deadline exceeded ({last})")
            timeout = min(self.settings.request_timeout_s, remaining)
            outcome = yield Request(method, path, body, params, timeout)
            retry_after: float | None = None
            if isinstance(outcome, Failure):
                last = outcome.message
            else:
                assert isinstance(outcome, Reply), outcome
                if _core.classify(outcome.status) != _core.RETRY:
                    return outcome
                last = _core.error_text(outcome.status, outcome.text)
                retry_after = _core.parse_retry_after(outcome.headers.get("retry-after"))
            if attempt + 1 >= policy.max_attempts:
                break
            wait = self._delay(attempt, retry_after)
            if wait >= deadline - time.monotonic():
                raise GaveUp(f"client: deadline exceeded ({last})")
            yield Sleep(wait)
        raise GaveUp(f"client: gave up after {policy.max_attempts} attempts ({last})")


def no_answer(exc: BaseException, timeout_s: float, timed_out: bool) -> Failure:
    """The :class:`Failure` a driver reports for a request that got no answer."""
    if timed_out:
        return Failure(True, f"request timed out after {timeout_s:.1f}s ({type(exc).__name__})")
    return Failure(False, f"connection error: {type(exc).__name__}: {exc}")
