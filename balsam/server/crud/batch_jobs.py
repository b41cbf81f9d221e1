"""Batch jobs (spec §7): ownership through the site, and the pending_deletion rule.

State rule: once a batch job is `pending_deletion`, a later state update is applied only if it is
`finished`; any other requested state is ignored while the other fields of the update still apply.
A batch job stored as `finished` makes its sessions expire (the session sweep reads that state).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, delete, func, select, update
from sqlalchemy.orm import Session

from balsam.server.api.errors import BadRequest, NotFound
from balsam.server.crud.job_json import bigint_array
from balsam.server.db.tables import BatchJob, Site
from balsam.server.schemas.batch_jobs import BatchJobCreate, BatchJobUpdate
from balsam.server.schemas.common import MAX_ITEMS_PER_BULK_OP

MISSING_IDS = "Could not find some Batch Job IDs"


def owned(owner_id: int) -> Select[tuple[BatchJob]]:
    return select(BatchJob).join(Site, BatchJob.site_id == Site.id).where(Site.owner_id == owner_id)


@dataclass
class BatchJobFilters:
    ids: list[int] | None = None
    site_ids: list[int] | None = None
    states: list[str] | None = None
    scheduler_id: int | None = None
    queue: str | None = None
    start_time_before: datetime | None = None
    start_time_after: datetime | None = None
    end_time_before: datetime | None = None
    end_time_after: datetime | None = None
    filter_tags: dict[str, str] | None = None


def filtered(owner_id: int, f: BatchJobFilters) -> Select[tuple[BatchJob]]:
    terms: list[ColumnElement[bool]] = []
    if f.ids:
        terms.append(BatchJob.id == func.any(bigint_array(f.ids)))
    if f.site_ids:
        terms.append(BatchJob.site_id == func.any(bigint_array(f.site_ids)))
    if f.states:
        terms.append(BatchJob.state.in_(f.states))
    if f.scheduler_id is not None:
        terms.append(BatchJob.scheduler_id == f.scheduler_id)
    if f.queue is not None:
        terms.append(BatchJob.queue == f.queue)
    if f.start_time_before is not None:
        terms.append(BatchJob.start_time <= f.start_time_before)
    if f.start_time_after is not None:
        terms.append(BatchJob.start_time >= f.start_time_after)
    if f.end_time_before is not None:
        terms.append(BatchJob.end_time <= f.end_time_before)
    if f.end_time_after is not None:
        terms.append(BatchJob.end_time >= f.end_time_after)
    if f.filter_tags:
        terms.append(BatchJob.filter_tags.contains(f.filter_tags))
    return owned(owner_id).where(*terms)


def page(
    db: Session, query: Select[tuple[BatchJob]], ordering: str | None, limit: int, offset: int
) -> tuple[int, list[BatchJob]]:
    count = db.scalar(select(func.count()).select_from(query.subquery())) or 0
    order: list[Any] = [BatchJob.id]
    # PostgreSQL's default null placement, as upstream: unstarted batch jobs last ascending, first descending.
    if ordering == "start_time":
        order = [BatchJob.start_time.asc(), BatchJob.id]
    elif ordering == "-start_time":
        order = [BatchJob.start_time.desc(), BatchJob.id]
    rows = list(db.scalars(query.order_by(*order).limit(limit).offset(offset))) if limit else []
    return count, rows


def get_owned(db: Session, owner_id: int, batch_job_id: int) -> BatchJob:
    row = db.scalars(owned(owner_id).where(BatchJob.id == batch_job_id)).first()
    if row is None:
        raise NotFound()
    return row


def create(db: Session, owner_id: int, body: BatchJobCreate) -> BatchJob:
    site = db.execute(select(Site.id).where(Site.id == body.site_id, Site.owner_id == owner_id)).first()
    if site is None:
        raise BadRequest(f"No site with ID {body.site_id}")
    row = BatchJob(**body.model_dump(mode="json"), state="pending_submission", scheduler_id=None)
    db.add(row)
    db.flush()
    db.refresh(row)
    return row


def update_many(
    db: Session, owner_id: int, updates: Sequence[tuple[int, BatchJobUpdate]], *, single: bool = False
) -> list[BatchJob]:
    """Apply each update's own keys to rows locked in id order; returns the rows ordered by id.

    An id named twice keeps its last item only, as upstream does (a 400 would make the client retry).
    """
    if len(updates) > MAX_ITEMS_PER_BULK_OP:
        raise BadRequest(f"Cannot bulk-update more than {MAX_ITEMS_PER_BULK_OP} in a single API call.")
    latest = dict(updates)
    ids = sorted(latest)
    rows = {
        r.id: r
        for r in db.scalars(
            owned(owner_id)
            .where(BatchJob.id == func.any(bigint_array(ids)))
            .order_by(BatchJob.id)
            .with_for_update(of=BatchJob)
        )
    }
    if len(rows) != len(ids):
        if single:
            raise NotFound()
        raise BadRequest(MISSING_IDS)
    for batch_job_id, body in latest.items():
        changes = body.model_dump(mode="python", include=body.model_fields_set)
        row = rows[batch_job_id]
        if "state" in changes and row.state == "pending_deletion" and changes["state"] != "finished":
            del changes["state"]
        if changes:
            db.execute(update(BatchJob).where(BatchJob.id == batch_job_id).values(**changes))
    db.expire_all()
    return list(db.scalars(select(BatchJob).where(BatchJob.id == func.any(bigint_array(ids))).order_by(BatchJob.id)))


def delete_owned(db: Session, owner_id: int, batch_job_id: int) -> None:
    """Delete the row; jobs and sessions that referenced it get `batch_job_id = NULL` (FK ON DELETE SET NULL)."""
    get_owned(db, owner_id, batch_job_id)
    db.execute(delete(BatchJob).where(BatchJob.id == batch_job_id))
