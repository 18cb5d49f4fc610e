"""The audit API (`/v1/audit…`) and the audit web page (`/audit…`)."""

from __future__ import annotations

import math
import secrets
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from fastapi.responses import StreamingResponse

from api import audit
from api.audit import page
from api.audit.records import id_key
from api.audit.store import AuditQuery, SqliteStore
from api.core.responses import SafeHTMLResponse, encodable_json
from api.core.text import escape_unencodable
from api.routes.deps import require_key, settings_dep
from executor.settings import Settings

router = APIRouter(tags=["audit"])

MAX_PAGE = 500


def _store() -> SqliteStore:
    store = audit.current().store
    if store is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "this process serves no audit reads")
    return store


def parse_time(value: str | None, field: str) -> float | None:
    if value is None or value == "":
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        if not math.isfinite(seconds) or abs(seconds) > 1e11:
            raise HTTPException(422, f"{field}: {value!r} is not a time; give epoch seconds or ISO 8601")
        return seconds
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise HTTPException(422, f"{field}: give epoch seconds or an ISO 8601 time, not {value!r}") from exc
    if parsed.tzinfo is None:
        from datetime import UTC

        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def build_query(
    verdict: list[str] | None = Query(None, description="One or more verdicts (repeat or comma-separate)."),  # noqa: B008
    reason: str | None = Query(None, max_length=200, description="Exact reason, e.g. 'import os'."),
    run: str | None = Query(None, max_length=200, description="Run tag."),
    kind: str | None = Query(None, pattern="^(validate|verify)$"),
    since: str | None = Query(None, description="From this time (epoch seconds or ISO 8601), inclusive."),
    until: str | None = Query(None, description="Before this time (epoch seconds or ISO 8601)."),
    q: str | None = Query(None, max_length=200, description="Text to find in the program."),
    cursor: str | None = Query(
        None, max_length=40, pattern=r"^\d+-\d+$", description="next_cursor of the previous page."
    ),
    limit: int = Query(50, ge=1, le=MAX_PAGE),
) -> AuditQuery:
    verdicts = [v for part in verdict or [] for v in part.split(",") if v.strip()] or None
    if cursor:
        try:
            id_key(cursor)
        except ValueError as exc:
            raise HTTPException(422, f"cursor: {exc}; pass the next_cursor of a previous page") from exc
    return AuditQuery(
        verdict=[v.strip() for v in verdicts] if verdicts else None,
        reason=reason or None,
        run=run if run not in (None, "") else None,
        kind=kind or None,
        since=parse_time(since, "since"),
        until=parse_time(until, "until"),
        q=q or None,
        cursor=cursor or None,
        limit=limit,
    )


QueryDep = Annotated[AuditQuery, Depends(build_query)]
KeyDep = Annotated[str | None, Depends(require_key)]


@router.get("/v1/audit", summary="Audit records, newest first, filtered, cursor-paginated")
def list_records(
    query: QueryDep, _key: KeyDep, full: bool = Query(False, description="Whole records, program included.")
) -> dict[str, Any]:
    records, next_cursor = _store().query(query, full=full)
    return {"records": records, "next_cursor": next_cursor}


@router.get("/v1/audit/stats", summary="Counts by verdict over time, by verdict and by reason")
def stats(query: QueryDep, _key: KeyDep, buckets: int = Query(48, ge=1, le=500)) -> dict[str, Any]:
    return _store().stats(query, buckets)


@router.get("/v1/audit/runs", summary="Audit records per run tag")
def runs(_key: KeyDep) -> dict[str, Any]:
    return {"runs": _store().runs()}


def _jsonl(store: SqliteStore, query: AuditQuery) -> Iterator[bytes]:
    for record in store.iter_all(query):
        yield encodable_json(record) + b"\n"


@router.get(
    "/v1/audit/export.jsonl",
    summary="Every matching record as JSON Lines (the list filters apply; cursor and limit do not)",
    response_class=StreamingResponse,
)
def export(query: QueryDep, _key: KeyDep) -> StreamingResponse:
    query.cursor = None
    return StreamingResponse(
        _jsonl(_store(), query),
        media_type="application/x-ndjson",
        headers={"Content-Disposition": 'attachment; filename="azr-audit.jsonl"'},
    )


@router.get(
    "/v1/audit/{record_id}", summary="One audit record", responses={404: {"description": "No such record."}}
)
def get_record(record_id: str, _key: KeyDep) -> dict[str, Any]:
    record = _store().get(record_id) if len(record_id) <= 40 else None
    if record is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"no audit record {record_id!r} (unknown, or trimmed by retention)"
        )
    return record


# ----------------------------------------------------------------------------- web page


def page_auth(request: Request, settings: Annotated[Settings, Depends(settings_dep)]) -> bool:
    """With API keys configured, the page wants the key in the 'azr_key' cookie."""
    if not settings.api.api_keys:
        return True
    offered = request.cookies.get("azr_key", "").encode()
    return any(secrets.compare_digest(offered, key.encode()) for key in settings.api.api_keys)


PageAuth = Annotated[bool, Depends(page_auth)]


@router.get("/audit", response_class=SafeHTMLResponse, include_in_schema=False)
def audit_page(request: Request, query: QueryDep, allowed: PageAuth) -> SafeHTMLResponse:
    if not allowed:
        return SafeHTMLResponse(page.login(), status_code=401)
    records, next_cursor = _store().query(query)
    return SafeHTMLResponse(page.records_page(query, records, next_cursor, dict(request.query_params)))


@router.get("/audit/chart.svg", include_in_schema=False)
def chart(query: QueryDep, allowed: PageAuth) -> Response:
    """Records by verdict over time for the page's filters (the cursor does not apply)."""
    if not allowed:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "API key needed")
    query.cursor = None
    svg = page.chart_svg(_store().stats(query))
    return Response(
        escape_unencodable(svg), media_type="image/svg+xml", headers={"Cache-Control": "private, max-age=5"}
    )


@router.get("/audit/runs", response_class=SafeHTMLResponse, include_in_schema=False)
def runs_page(allowed: PageAuth) -> SafeHTMLResponse:
    if not allowed:
        return SafeHTMLResponse(page.login(), status_code=401)
    return SafeHTMLResponse(page.runs_page(_store().runs()))


@router.get("/audit/record/{record_id}", response_class=SafeHTMLResponse, include_in_schema=False)
def record_page(record_id: str, allowed: PageAuth) -> SafeHTMLResponse:
    if not allowed:
        return SafeHTMLResponse(page.login(), status_code=401)
    record = _store().get(record_id) if len(record_id) <= 40 else None
    if record is None:
        return SafeHTMLResponse(page.not_found(record_id), status_code=404)
    return SafeHTMLResponse(page.record_page(record))
