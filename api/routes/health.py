"""GET /healthz, /readyz, /metrics."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response, status

from api import metrics
from api.routes.deps import backend_dep
from api.services.backends import Backend

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is alive")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz", summary="Workers and sandboxes are ready", responses={503: {"description": "Not ready."}}
)
def readyz(response: Response, backend: Annotated[Backend, Depends(backend_dep)]) -> dict[str, Any]:
    ready, detail = backend.readiness()
    if not ready:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return {"status": "ready" if ready else "not ready", **detail}


@router.get("/metrics", summary="Prometheus metrics (text format)", response_class=Response)
def metrics_endpoint() -> Response:
    body, content_type = metrics.render()
    return Response(body, media_type=content_type)
