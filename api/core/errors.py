"""The HTTP errors a request's content earns before any work is accepted: 413 and 422,
naming the field and the limit or rule (counted in the rejection metrics)."""

from __future__ import annotations

from fastapi import HTTPException

from api import metrics


def too_large(field: str, size: int, limit: int, setting: str) -> HTTPException:
    metrics.REJECTED.labels("too_large").inc()
    return HTTPException(
        413,
        f"{field} has {size:,}; the limit is {limit:,} ({setting})",
    )


def unprocessable(field: str, message: str) -> HTTPException:
    metrics.REJECTED.labels("invalid").inc()
    return HTTPException(422, f"{field}: {message}")
