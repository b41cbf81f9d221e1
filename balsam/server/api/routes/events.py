"""`/events/` routes (spec §9): the read-only job state log."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from balsam.server.api.deps import CurrentUser, DbDep, PagingDep
from balsam.server.crud import events
from balsam.server.schemas.common import LookupId, NaiveUTC, Page, parse_kv_filters
from balsam.server.schemas.events import LogEventOut

router = APIRouter(prefix="/events", tags=["events"])


@router.get("/", response_model=Page[LogEventOut])
def list_events(
    user: CurrentUser,
    db: DbDep,
    paging: PagingDep,
    id: Annotated[list[LookupId] | None, Query()] = None,
    job_id: Annotated[list[LookupId] | None, Query()] = None,
    batch_job_id: LookupId | None = None,
    scheduler_id: LookupId | None = None,
    tags: Annotated[list[str] | None, Query()] = None,
    data: Annotated[list[str] | None, Query()] = None,
    timestamp_before: NaiveUTC | None = None,
    timestamp_after: NaiveUTC | None = None,
    from_state: str | None = None,
    to_state: str | None = None,
    ordering: Literal["timestamp", "-timestamp"] = "-timestamp",
) -> Page[LogEventOut]:
    f = events.EventFilters(
        ids=id,
        job_ids=job_id,
        batch_job_id=batch_job_id,
        scheduler_id=scheduler_id,
        tags=parse_kv_filters(tags) or None,
        data=parse_kv_filters(data) or None,
        timestamp_before=timestamp_before,
        timestamp_after=timestamp_after,
        from_state=from_state,
        to_state=to_state,
    )
    count, rows = events.page(db, events.filtered(user.id, f), ordering, paging.limit, paging.offset)
    db.rollback()
    return Page[LogEventOut](count=count, results=[LogEventOut.model_validate(r) for r in rows])
