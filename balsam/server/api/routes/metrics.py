"""`/metrics`: Prometheus text exposition, only when `BALSAM_METRICS_ENABLED`; with `BALSAM_METRICS_TOKEN` set, only
for `Authorization: Bearer <token>`."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, HTTPException, Request, Response, status
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from balsam.server.api.deps import SettingsDep

router = APIRouter(tags=["operations"])


def _authorised(request: Request, token: str) -> bool:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


@router.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
def metrics(request: Request, settings: SettingsDep) -> Response:
    token = settings.metrics_token.get_secret_value() if settings.metrics_token else ""
    if token and not _authorised(request, token):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "Not authenticated", headers={"WWW-Authenticate": "Bearer"})
    registry: CollectorRegistry = request.app.state.metrics_registry  # built with the app (balsam.server.main)
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
