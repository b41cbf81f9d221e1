"""`/healthz` (liveness, with the state of the database and Redis) and `/readyz` (readiness: this process can
serve, because the database answers and its schema is the one this code was written for)."""

from __future__ import annotations

from functools import lru_cache

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import ProgrammingError, SQLAlchemyError

from balsam.server.api.deps import DbDep, PublisherDep
from balsam.server.db.migrate import head_revision

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


@lru_cache(maxsize=1)
def expected_schema() -> str | None:
    """The migration head shipped with this code (read from the package's Alembic scripts once per process)."""
    return head_revision()


@router.get("/readyz")
def readyz(db: DbDep) -> JSONResponse:
    expected = expected_schema()
    database, schema = "ok", None
    try:
        versions = set(db.scalars(text("SELECT version_num FROM alembic_version")))
        schema = ",".join(sorted(versions)) or None
    except ProgrammingError:
        database = "not migrated"  # reachable, but no alembic_version table: `balsam server migrate` never ran
    except SQLAlchemyError:
        database = "unavailable"
    finally:
        db.rollback()
    ready = database == "ok" and schema == expected
    return JSONResponse(
        {
            "status": "ready" if ready else "not ready",
            "database": database,
            "schema": schema,
            "expected_schema": expected,
        },
        status_code=200 if ready else 503,
    )
