"""Transport-independent pieces shared by the sync and async clients (pure logic, no I/O)."""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from azr_client.models import (
    ValidateResult,
    VerifyResult,
    failed_validate,
    failed_verify,
)

T = TypeVar("T")

#: Statuses worth another try: overload, gateway trouble and server errors.
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


class VerificationClientError(Exception):
    """Raised only for caller mistakes (bad key, duplicate ids) — never for a slow service."""


class AuthenticationError(VerificationClientError):
    """401/403: the API key is missing or wrong. A configuration error, so it is raised."""


class ServiceUnavailableError(VerificationClientError):
    """Raised by the non-batch helpers (jobs, health) when the service cannot be reached."""


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter. ``delay(attempt)`` = base * 2**attempt, capped, jittered.

    A ``Retry-After`` given by the server is a lower bound on the wait.
    """

    max_attempts: int = 6
    backoff_base_s: float = 0.2
    backoff_max_s: float = 10.0
    jitter: float = 0.5

    def delay(self, attempt: int, retry_after_s: float | None, rng: random.Random | None = None) -> float:
        r = rng.random() if rng is not None else random.random()
        raw = min(self.backoff_max_s, self.backoff_base_s * (2**attempt))
        jittered = raw * (1.0 - self.jitter * r)
        if retry_after_s is not None:
            jittered = max(jittered, min(retry_after_s, self.backoff_max_s * 6))
        return max(0.0, jittered)


@dataclass(frozen=True)
class ClientSettings:
    base_url: str = "http://127.0.0.1:8000"
    api_key: str | None = None
    #: Largest number of tasks/answers put in one HTTP request.
    max_batch: int = 256
    #: Parallel requests when a call is split in several chunks.
    concurrency: int = 4
    #: Time limit of one HTTP request (connect + send + answer).
    request_timeout_s: float = 60.0
    #: Time limit of one whole ``validate``/``verify`` call, retries included.
    deadline_s: float = 300.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    user_agent: str = "azr-client/0.1"

    @classmethod
    def build(
        cls,
        base_url: str,
        api_key: str | None,
        max_batch: int,
        concurrency: int,
        request_timeout_s: float,
        deadline_s: float,
        retry: RetryPolicy | None,
    ) -> ClientSettings:
        """Settings from a client constructor's arguments (normalised, checked)."""
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        if request_timeout_s <= 0 or deadline_s <= 0:
            raise ValueError("request_timeout_s and deadline_s must be > 0")
        return cls(
            base_url=base_url.rstrip("/"),
            api_key=api_key,
            max_batch=max_batch,
            concurrency=max(1, concurrency),
            request_timeout_s=request_timeout_s,
            deadline_s=deadline_s,
            retry=retry or RetryPolicy(),
        )

    def headers(self) -> dict[str, str]:
        h = {"User-Agent": self.user_agent, "Accept": "application/json"}
        if self.api_key:
            h["Authorization"] = f"Bearer {self.api_key}"
        return h


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    now = time.time() if now is None else now
    return max(0.0, when.timestamp() - now)


def chunked(items: Sequence[T], size: int) -> Iterator[list[T]]:
    if size < 1:
        raise ValueError("chunk size must be >= 1")
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def check_unique_ids(bodies: Sequence[Mapping[str, Any]]) -> None:
    seen: set[str] = set()
    for body in bodies:
        if "id" not in body:
            raise VerificationClientError("every task/answer needs an 'id'")
        key = str(body["id"])
        if key in seen:
            raise VerificationClientError(f"duplicate id {key!r} in one call")
        seen.add(key)


# --------------------------------------------------------------------------- outcomes

#: What to do with one HTTP response.
OK, RETRY, SPLIT, AUTH, FAIL = "ok", "retry", "split", "auth", "fail"


def classify(status: int) -> str:
    if 200 <= status < 300:
        return OK
    if status in (401, 403):
        return AUTH
    if status in (413, 422):
        return SPLIT
    if status in RETRY_STATUSES or status >= 500:
        return RETRY
    return FAIL


def error_text(status: int, body: str) -> str:
    body = " ".join(body.split())
    if len(body) > 300:
        body = body[:300] + "…"
    return f"HTTP {status}: {body}" if body else f"HTTP {status}"


@dataclass(frozen=True)
class Kind:
    """How to turn request bodies and JSON results of one endpoint into typed results."""

    path: str
    items_key: str
    parse: Callable[[Mapping[str, Any]], Any]
    fail: Callable[[Mapping[str, Any], str, str], Any]


def _fail_validate(body: Mapping[str, Any], verdict: str, detail: str) -> ValidateResult:
    return failed_validate(str(body["id"]), verdict, detail, len(body.get("inputs") or []))


def _fail_verify(body: Mapping[str, Any], verdict: str, detail: str) -> VerifyResult:
    return failed_verify(str(body["id"]), verdict, detail)


VALIDATE = Kind("/v1/validate", "tasks", ValidateResult.from_json, _fail_validate)
VERIFY = Kind("/v1/verify", "answers", VerifyResult.from_json, _fail_verify)


def collect_results(kind: Kind, chunk: Sequence[Mapping[str, Any]], payload: Any) -> list[Any]:
    """Match a 200 answer's results to the chunk's items by id (missing ones become failures)."""
    raw = payload.get("results") if isinstance(payload, Mapping) else None
    by_id: dict[str, Any] = {}
    if isinstance(raw, list):
        for item in raw:
            if isinstance(item, Mapping) and "id" in item:
                try:
                    by_id[str(item["id"])] = kind.parse(item)
                except (KeyError, TypeError, ValueError):
                    continue
    out = []
    for body in chunk:
        res = by_id.get(str(body["id"]))
        if res is None:
            res = kind.fail(body, "sandbox_error", "client: result missing from service response")
        out.append(res)
    return out


def fail_all(kind: Kind, chunk: Sequence[Mapping[str, Any]], verdict: str, detail: str) -> list:
    return [kind.fail(body, verdict, detail) for body in chunk]


def build_body(
    kind: Kind,
    chunk: Sequence[Mapping[str, Any]],
    extra: Mapping[str, Any],
) -> dict[str, Any]:
    body: dict[str, Any] = {kind.items_key: list(chunk)}
    body.update({k: v for k, v in extra.items() if v is not None})
    return body


def split_halves(chunk: Sequence[T]) -> tuple[list[T], list[T]]:
    mid = len(chunk) // 2
    return list(chunk[:mid]), list(chunk[mid:])
