"""POST /v1/validate, POST /v1/verify, GET /v1/jobs/{job_id}."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Query, Response, status

from api import metrics
from api.core.errors import unprocessable
from api.routes.deps import backend_dep, require_key, settings_dep
from api.schemas import (
    AnswerIn,
    ErrorOut,
    JobAccepted,
    JobStatus,
    ValidateRequest,
    ValidateResponse,
    VerifyRequest,
    VerifyResponse,
)
from api.services import limits
from api.services.backends import Backend, BackendUnavailable, DeadlineExceeded, Overloaded
from api.services.execution import Payload, validate_payload, verify_payload
from executor.settings import Settings

router = APIRouter(prefix="/v1", tags=["verification"])

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Missing or unknown API key."},
    413: {"model": ErrorOut, "description": "A batch or a field is over its limit; the message names both."},
    422: {"description": "The body breaks the schema; the message names the field."},
    429: {"model": ErrorOut, "description": "The queue is full; retry after `Retry-After` seconds."},
    503: {
        "model": ErrorOut,
        "description": "Overloaded, or the job queue is unreachable; retry after `Retry-After` seconds.",
    },
    504: {"model": ErrorOut, "description": "Not finished within the request deadline; poll the job id."},
}
WAIT = Query(True, description="false: answer 202 with a job id at once; poll GET /v1/jobs/{job_id}.")


def unavailable(exc: BackendUnavailable) -> HTTPException:
    metrics.REJECTED.labels("unavailable").inc()
    return HTTPException(
        status.HTTP_503_SERVICE_UNAVAILABLE, str(exc), headers={"Retry-After": str(exc.retry_after_s)}
    )


async def _dispatch(backend: Backend, payload: Payload, wait: bool, response: Response) -> Any:
    try:
        if not wait:
            job_id = await backend.submit(payload)
            response.status_code = status.HTTP_202_ACCEPTED
            return JobAccepted(job_id=job_id)
        return {"results": await backend.run(payload)}
    except Overloaded as exc:
        metrics.REJECTED.labels("overloaded").inc()
        code = (
            status.HTTP_429_TOO_MANY_REQUESTS
            if backend.mode == "queue"
            else status.HTTP_503_SERVICE_UNAVAILABLE
        )
        raise HTTPException(code, str(exc), headers={"Retry-After": str(exc.retry_after_s)}) from exc
    except BackendUnavailable as exc:
        raise unavailable(exc) from exc
    except DeadlineExceeded as exc:
        raise HTTPException(
            status.HTTP_504_GATEWAY_TIMEOUT,
            f"not finished within the request deadline; poll GET /v1/jobs/{exc.job_id}",
        ) from exc


@router.post(
    "/validate",
    response_model=ValidateResponse | JobAccepted,
    responses={**ERRORS, 202: {"model": JobAccepted, "description": "Accepted (wait=false)."}},
    summary="Validate proposed tasks and compute their gold outputs",
)
async def validate(
    request: ValidateRequest,
    response: Response,
    backend: Annotated[Backend, Depends(backend_dep)],
    settings: Annotated[Settings, Depends(settings_dep)],
    key_id: Annotated[str | None, Depends(require_key)],
    wait: bool = WAIT,
) -> Any:
    """Static checks, then each input runs `repeats` times in different interpreters (different
    hash seeds); `valid` only if every input ran and every repeat gave the same output."""
    limits.check_validate(request, settings)
    payload = validate_payload([t.model_dump() for t in request.tasks], request.repeats, request.timeout_s)
    payload["meta"] = {"run": request.run, "step": request.step, "key_id": key_id}
    return await _dispatch(backend, payload, wait, response)


@router.post(
    "/verify",
    response_model=VerifyResponse | JobAccepted,
    responses={**ERRORS, 202: {"model": JobAccepted, "description": "Accepted (wait=false)."}},
    summary="Judge solver answers (deduction, abduction, induction)",
)
async def verify(
    body: Annotated[
        VerifyRequest | list[AnswerIn],
        Body(description='`{"answers": [...], "run": ..., "step": ...}`, or a bare list of answers.'),
    ],
    response: Response,
    backend: Annotated[Backend, Depends(backend_dep)],
    settings: Annotated[Settings, Depends(settings_dep)],
    key_id: Annotated[str | None, Depends(require_key)],
    wait: bool = WAIT,
) -> Any:
    """Answers are literals (a deduction answer a literal, an abduction answer a literal argument
    list); values are compared with Python `==` on both texts parsed as literals, in the service,
    never inside the sandbox. Deduction runs nothing; hidden induction outputs never enter a sandbox."""
    if isinstance(body, VerifyRequest):
        request = body
    elif not body:
        raise unprocessable("answers", "give at least one answer")
    else:
        request = VerifyRequest(answers=body, timeout_s=None)
    limits.check_verify(request, settings)
    payload = verify_payload([a.model_dump() for a in request.answers], request.timeout_s)
    payload["meta"] = {"run": request.run, "step": request.step, "key_id": key_id}
    return await _dispatch(backend, payload, wait, response)


@router.get(
    "/jobs/{job_id}",
    response_model=JobStatus,
    responses={
        401: ERRORS[401],
        404: {"model": ErrorOut, "description": "No such job (or it expired)."},
        503: ERRORS[503],
    },
    summary="Status and results of an async request",
)
async def job(
    job_id: str,
    backend: Annotated[Backend, Depends(backend_dep)],
    key_id: Annotated[str | None, Depends(require_key)],
) -> Any:
    if len(job_id) > 100:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such job")
    try:
        view = await backend.job(job_id)
    except BackendUnavailable as exc:
        raise unavailable(exc) from exc
    if view is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no job {job_id!r} (unknown, or its results expired)")
    return view
