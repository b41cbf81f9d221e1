"""`/sessions/` routes (spec §8): leases, acquire, tick and delete.

There is deliberately no `GET /sessions/{id}` (it answers 405); clients use `GET /sessions/?id=`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from balsam.server.api.deps import CurrentUser, DbDep, PublisherDep, SettingsDep
from balsam.server.api.errors import NotFound
from balsam.server.crud import sessions
from balsam.server.crud.transactions import run_write
from balsam.server.metrics.counters import JOBS_ACQUIRED
from balsam.server.schemas.common import LookupId, Page
from balsam.server.schemas.jobs import JobOut
from balsam.server.schemas.sessions import SessionAcquire, SessionCreate, SessionOut
from balsam.server.sweeper import publish_expiry

router = APIRouter(prefix="/sessions", tags=["sessions"])


@router.get("/", response_model=Page[SessionOut])
def list_sessions(
    user: CurrentUser, db: DbDep, id: Annotated[list[LookupId] | None, Query()] = None
) -> Page[SessionOut]:
    rows = sessions.list_owned(db, user.id, id)
    return Page[SessionOut](count=len(rows), results=[SessionOut.model_validate(r) for r in rows])


@router.post("/", response_model=SessionOut, status_code=status.HTTP_201_CREATED)
def create_session(body: SessionCreate, user: CurrentUser, db: DbDep) -> SessionOut:
    return run_write(db, lambda: SessionOut.model_validate(sessions.create(db, user.id, body)))


@router.post(
    "/{session_id}",
    response_model=list[JobOut],
    responses={200: {"description": "The acquired jobs, with session_id and batch_job_id set"}},
)
def acquire_jobs(
    session_id: LookupId,
    body: SessionAcquire,
    user: CurrentUser,
    db: DbDep,
    settings: SettingsDep,
    publisher: PublisherDep,
) -> Response:
    now = sessions.utcnow()
    outcome = run_write(
        db, lambda: sessions.acquire(db, user.id, session_id, body, now, settings.session_expiry_seconds)
    )
    if outcome.expired is not None:
        publish_expiry(publisher, outcome.expired)
        raise NotFound()
    JOBS_ACQUIRED.inc(outcome.acquired)  # after the commit
    # The JSON is built by PostgreSQL (crud.job_json); skip re-validating it through JobOut.
    return Response(content=outcome.jobs_json, media_type="application/json")


@router.put("/{session_id}", response_model=None)
def tick_session(
    session_id: LookupId, user: CurrentUser, db: DbDep, settings: SettingsDep, publisher: PublisherDep
) -> None:
    now = sessions.utcnow()
    outcome = run_write(db, lambda: sessions.tick(db, user.id, session_id, now, settings.session_expiry_seconds))
    if outcome.expired is not None:
        publish_expiry(publisher, outcome.expired)
        raise NotFound()
    return None


@router.delete("/{session_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
def delete_session(session_id: LookupId, user: CurrentUser, db: DbDep, publisher: PublisherDep) -> Response:
    result = run_write(db, lambda: sessions.delete_owned(db, user.id, session_id, sessions.utcnow()))
    publish_expiry(publisher, result)
    publisher.publish(user.id, "delete", "session", {"id": session_id})
    return Response(status_code=status.HTTP_204_NO_CONTENT)
