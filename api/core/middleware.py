"""Pure ASGI middleware: the request-body limit (declared and streamed) and request metrics."""

from __future__ import annotations

import json
import time

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import metrics

_KNOWN = ("/v1/validate", "/v1/verify", "/healthz", "/readyz", "/metrics")


def endpoint_label(path: str) -> str:
    """A bounded label set for metrics: known endpoints, /v1/jobs, /v1/audit, /audit, other."""
    if path.startswith(_KNOWN):
        return path
    for prefix in ("/v1/jobs", "/v1/audit", "/audit", "/docs", "/openapi.json"):
        if path.startswith(prefix):
            return prefix
    return "other"


class LimitAndMeasure:
    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    def _too_large(self, size: str) -> str:
        return f"request body has {size} bytes; the limit is {self.max_body_bytes:,} (AZR_MAX_BODY_BYTES)"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        endpoint = endpoint_label(scope.get("path", ""))
        declared = next((v for k, v in scope.get("headers", ()) if k == b"content-length"), None)
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                size = -1
            if size < 0 or size > self.max_body_bytes:
                metrics.REJECTED.labels("body_too_large").inc()
                metrics.REQUESTS.labels(endpoint, "413").inc()
                body = json.dumps({"detail": self._too_large(declared.decode(errors="replace"))}).encode()
                await send(
                    {
                        "type": "http.response.start",
                        "status": 413,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return

        received = 0
        status = 500

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:  # a chunked body that never declared its size
                    metrics.REJECTED.labels("body_too_large").inc()
                    raise HTTPException(413, self._too_large(f"more than {self.max_body_bytes:,}"))
            return message

        async def measured_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, limited_receive, measured_send)
        finally:
            metrics.REQUESTS.labels(endpoint, str(status)).inc()
            metrics.REQUEST_SECONDS.labels(endpoint).observe(time.perf_counter() - started)
