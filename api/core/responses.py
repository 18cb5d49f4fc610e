"""Every response body the API writes can be encoded, and body-parsing errors are 422.

* `SafeJSONResponse` is the app's default response class, so every route's JSON (the
  verdicts of /v1/validate and /v1/verify, /v1/jobs, the audit API) and every error goes
  through its `render`: text UTF-8 cannot encode (a lone surrogate from the request or
  from the sandbox) is written as a backslash escape, and NaN or infinity as null,
  instead of failing the whole request with a 500 and losing every verdict in it.
* `SafeHTMLResponse` does the same for the audit pages.
* `install(app)` puts handlers for HTTP errors and request-validation errors in place that
  answer with `SafeJSONResponse`, and turn a body that cannot be parsed (not JSON, not
  UTF-8, nested too deeply) into the contract's 422 with a message that names the problem.
"""

from __future__ import annotations

import json
from typing import Any

import pydantic_core
from fastapi import FastAPI, Request, Response, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.utils import is_body_allowed_for_status_code
from starlette.exceptions import HTTPException

from api import metrics
from api.core.text import encodable, escape_unencodable


def encodable_json(content: Any) -> bytes:
    """Compact UTF-8 JSON of a JSON-like value; never fails on its strings or floats."""
    try:
        # pydantic's serializer (what FastAPI's own fast path uses); it refuses a lone
        # surrogate, and nesting past its depth limit (255)
        return pydantic_core.to_json(content, inf_nan_mode="null")
    except ValueError:
        text = json.dumps(encodable(content), ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        return text.encode("utf-8")


class SafeJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return encodable_json(content)


class SafeHTMLResponse(HTMLResponse):
    def render(self, content: Any) -> bytes | memoryview:
        return super().render(escape_unencodable(content) if isinstance(content, str) else content)


# ----------------------------------------------------------------------------- errors


def _body_problem(cause: BaseException) -> str:
    if isinstance(cause, UnicodeDecodeError):
        return f"the request body is not UTF-8 text (byte {cause.start} cannot be decoded); send UTF-8 JSON"
    if isinstance(cause, RecursionError):
        return "the request body's JSON nests too deeply to parse"
    return f"the request body cannot be parsed as JSON ({type(cause).__name__})"


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    headers = getattr(exc, "headers", None)
    if exc.status_code == status.HTTP_400_BAD_REQUEST and exc.__cause__ is not None:
        # FastAPI answers 400 when reading the JSON body raised anything but a JSONDecodeError
        return _unprocessable_body(_body_problem(exc.__cause__))
    if not is_body_allowed_for_status_code(exc.status_code):
        return Response(status_code=exc.status_code, headers=headers)
    return SafeJSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)


# How deep a 422 repeats the offending part of the request (JSON encoders recurse, and the
# decoder let through some 950 levels).
ECHO_DEPTH = 32


async def validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    undecodable = next((e for e in errors if e.get("type") == "json_invalid"), None)
    if undecodable is not None:
        reason = (undecodable.get("ctx") or {}).get("error", "it does not decode")
        position = list(undecodable.get("loc") or ())[1:]
        where = f" at character {position[0]}" if position else ""
        return _unprocessable_body(f"the request body is not valid JSON: {reason}{where}")
    shown = [{**e, "input": encodable(e["input"], ECHO_DEPTH)} if "input" in e else e for e in errors]
    return SafeJSONResponse({"detail": jsonable_encoder(shown)}, status_code=422)


def _unprocessable_body(message: str) -> Response:
    metrics.REJECTED.labels("invalid").inc()
    return SafeJSONResponse({"detail": f"body: {message}"}, status_code=422)


def install(app: FastAPI) -> None:
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
