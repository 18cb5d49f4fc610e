"""Request dependencies of the routes: the settings, the backend, authentication."""

from __future__ import annotations

import hashlib
import secrets
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api import metrics
from api.services.backends import Backend
from executor.settings import Settings

bearer = HTTPBearer(auto_error=False, description="An API key from AZR_API_KEYS, when keys are configured.")


async def settings_dep(request: Request) -> Settings:
    """The settings the app was made with (`create_app`)."""
    settings: Settings = request.app.state.settings
    return settings


async def backend_dep(request: Request) -> Backend:
    backend: Backend = request.app.state.backend
    return backend


async def require_key(
    settings: Annotated[Settings, Depends(settings_dep)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> str | None:
    """The caller's key id (a short hash), or None when no keys are configured."""
    if not settings.api.api_keys:
        return None
    if credentials is None:
        metrics.REJECTED.labels("unauthorized").inc()
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing API key: send 'Authorization: Bearer <key>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    offered = credentials.credentials.encode()
    if not any(secrets.compare_digest(offered, key.encode()) for key in settings.api.api_keys):
        metrics.REJECTED.labels("unauthorized").inc()
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "unknown API key", headers={"WWW-Authenticate": "Bearer"}
        )
    return hashlib.sha256(offered).hexdigest()[:12]
