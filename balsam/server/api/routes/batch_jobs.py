"""`/batch-jobs/` routes (spec §7): thin wrappers over balsam.server.crud.batch_jobs."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response, status

from balsam.server.api.deps import CurrentUser, DbDep, PagingDep, PublisherDep
from balsam.server.crud import batch_jobs
from balsam.server.schemas.batch_jobs import BatchJobCreate, BatchJobOut, BatchJobPatch, BatchJobUpdate
from balsam.server.schemas.common import LookupId, NaiveUTC, Page, parse_kv_filters

router = APIRouter(prefix="/batch-jobs", tags=["batch-jobs"])


@router.get("/", response_model=Page[BatchJobOut])
def list_batch_jobs(
    user: CurrentUser,
    db: DbDep,
    paging: PagingDep,
    id: Annotated[list[LookupId] | None, Query()] = None,
    site_id: Annotated[list[LookupId] | None, Query()] = None,
    state: Annotated[list[str] | None, Query()] = None,
    scheduler_id: LookupId | None = None,
    queue: str | None = None,
    start_time_before: NaiveUTC | None = None,
    start_time_after: NaiveUTC | None = None,
    end_time_before: NaiveUTC | None = None,
    end_time_after: NaiveUTC | None = None,
    filter_tags: Annotated[list[str] | None, Query()] = None,
    ordering: Literal["start_time", "-start_time"] | None = None,
) -> Page[BatchJobOut]:
    f = batch_jobs.BatchJobFilters(
        ids=id,
        site_ids=site_id,
        states=state,
        scheduler_id=scheduler_id,
        queue=queue,
        start_time_before=start_time_before,
        start_time_after=start_time_after,
        end_time_before=end_time_before,
        end_time_after=end_time_after,
        filter_tags=parse_kv_filters(filter_tags) or None,
    )
    count, rows = batch_jobs.page(db, batch_jobs.filtered(user.id, f), ordering, paging.limit, paging.offset)
    db.rollback()
    return Page[BatchJobOut](count=count, results=[BatchJobOut.model_validate(r) for r in rows])


@router.get("/{batch_job_id}", response_model=BatchJobOut)
def get_batch_job(batch_job_id: LookupId, user: CurrentUser, db: DbDep) -> BatchJobOut:
    out = BatchJobOut.model_validate(batch_jobs.get_owned(db, user.id, batch_job_id))
    db.rollback()
    return out


@router.post("/", response_model=BatchJobOut, status_code=status.HTTP_201_CREATED)
def create_batch_job(body: BatchJobCreate, user: CurrentUser, db: DbDep, publisher: PublisherDep) -> BatchJobOut:
    with db.begin():
        out = BatchJobOut.model_validate(batch_jobs.create(db, user.id, body))
    publisher.publish(user.id, "create", "batch_job", out.model_dump(mode="json"))
    return out


@router.put("/{batch_job_id}", response_model=BatchJobOut)
def update_batch_job(
    batch_job_id: LookupId, body: BatchJobUpdate, user: CurrentUser, db: DbDep, publisher: PublisherDep
) -> BatchJobOut:
    with db.begin():
        rows = batch_jobs.update_many(db, user.id, [(batch_job_id, body)], single=True)
        out = BatchJobOut.model_validate(rows[0])
    publisher.publish(user.id, "update", "batch_job", out.model_dump(mode="json"))
    return out


@router.patch("/", response_model=list[BatchJobOut])
def bulk_update_batch_jobs(
    body: list[BatchJobPatch], user: CurrentUser, db: DbDep, publisher: PublisherDep
) -> list[BatchJobOut]:
    with db.begin():
        rows = batch_jobs.update_many(db, user.id, [(item.id, item) for item in body])
        out = [BatchJobOut.model_validate(r) for r in rows]
    publisher.publish(user.id, "bulk-update", "batch_job", [o.model_dump(mode="json") for o in out])
    return out


@router.delete("/{batch_job_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
def delete_batch_job(batch_job_id: LookupId, user: CurrentUser, db: DbDep, publisher: PublisherDep) -> Response:
    with db.begin():
        batch_jobs.delete_owned(db, user.id, batch_job_id)
    publisher.publish(user.id, "delete", "batch_job", {"id": batch_job_id})
    return Response(status_code=status.HTTP_204_NO_CONTENT)
