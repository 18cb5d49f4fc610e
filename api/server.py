"""The FastAPI application and `azr-exec serve`."""

from __future__ import annotations

import gc
import logging
import os
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from api import audit
from api.core import responses
from api.core.middleware import LimitAndMeasure
from api.routes import audit as audit_routes
from api.routes import health, verification
from api.services.backends import Backend, make_backend
from executor.settings import Settings, get_settings

log = logging.getLogger(__name__)

DESCRIPTION = """Verification service for Absolute Zero Reasoning (contract: verification-api-v1).

* `POST /v1/validate` — proposer side: static checks, sandboxed runs with a determinism check, gold outputs.
* `POST /v1/verify` — solver side: deduction, abduction and induction answers judged in the sandbox.
* `?wait=false` on either → `202 {"job_id"}`; poll `GET /v1/jobs/{job_id}`.

Verdicts: ok · wrong · syntax_error · forbidden · bad_form · invalid_input · nondeterministic ·
timeout · memory_limit · output_limit · runtime_error · sandbox_error.
"""


# How long a thread may hold the GIL while another waits for it (Python's default is 5 ms).
# The event loop gives the GIL up at every socket operation and then waits up to this long
# to get it back while a worker thread checks a big program, so a /healthz took some 20 ms.
SWITCH_INTERVAL_S = 0.001


def keep_the_loop_responsive() -> None:
    """Short GIL turns for the event loop's sake, and the start-up heap frozen out of the
    cyclic garbage collector, whose full passes over it held the GIL for tens of ms while
    a big program's syntax tree was built (/healthz under a 2,800-lambda program: at
    worst 55-63 ms without these, about 20 ms with them)."""
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    gc.collect()
    gc.freeze()


def create_app(settings: Settings | None = None, backend: Backend | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        chosen = backend or make_backend(settings)
        chosen.start()
        audit.configure(settings)
        app.state.backend = chosen
        keep_the_loop_responsive()
        log.info("azr-exec API ready in %s mode", chosen.mode)
        try:
            yield
        finally:
            chosen.close()
            audit.shutdown()

    app = FastAPI(
        title="AZR verification service",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        default_response_class=responses.SafeJSONResponse,
    )
    responses.install(app)
    app.include_router(verification.router)
    app.include_router(health.router)
    app.include_router(audit_routes.router)
    app.mount("/audit/static", StaticFiles(directory=audit.STATIC_DIR), name="audit-static")

    app.state.settings = settings
    app.add_middleware(LimitAndMeasure, max_body_bytes=settings.api.max_body_bytes)

    return app


def serve(host: str = "127.0.0.1", port: int = 8000, workers: int = 1) -> None:
    import uvicorn

    settings = get_settings()
    redis_url = settings.queue.redis_url
    mode = "queue (RQ at " + redis_url + ")" if redis_url else "embedded (in-process sandbox pool)"
    log.info("starting azr-exec serve on http://%s:%d in %s mode; docs at /docs", host, port, mode)
    if workers > 1:
        if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            # Each uvicorn worker is a process: counters must be aggregated across them.
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="azr-metrics-")
        uvicorn.run(
            "api.server:app_factory", factory=True, host=host, port=port, workers=workers, log_level="info"
        )
    else:
        uvicorn.run(create_app(settings), host=host, port=port, log_level="info", access_log=False)


def app_factory() -> FastAPI:
    return create_app()
