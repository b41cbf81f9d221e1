"""`/healthz`: liveness plus the state of the database and Redis, for load balancers and operators."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from balsam.server.api.deps import DbDep, PublisherDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz(db: DbDep, publisher: PublisherDep) -> JSONResponse:
    try:
        db.execute(text("SELECT 1"))
        database = "ok"
    except SQLAlchemyError:
        database = "unavailable"
    redis_state = ("ok" if publisher.ping() else "unavailable") if publisher.enabled else "disabled"
    # Redis is optional for serving the API, so only the database decides the status code.
    healthy = database == "ok"
    return JSONResponse(
        {"status": "ok" if healthy else "degraded", "database": database, "redis": redis_state},
        status_code=200 if healthy else 503,
    )
