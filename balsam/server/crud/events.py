"""The job state log (spec §9), read-only.

`batch_job_id` means the owning job's `batch_job_id`; `scheduler_id` means the owning job's batch job has
that scheduler id (both through `jobs.batch_job_id`, never through the site, spec §12.2). The filters
are plain WHERE terms and semi-joins on `jobs`, so every event appears once and LIMIT/OFFSET pages are exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Integer, Row, Select, cast, func, select
from sqlalchemy.orm import Session

from balsam.server.crud.job_json import bigint_array
from balsam.server.db.tables import App, BatchJob, Job, LogEvent, Site


@dataclass
class EventFilters:
    ids: list[int] | None = None
    job_ids: list[int] | None = None
    batch_job_id: int | None = None
    scheduler_id: int | None = None
    tags: dict[str, str] | None = None
    data: dict[str, str] | None = None
    timestamp_before: datetime | None = None
    timestamp_after: datetime | None = None
    from_state: str | None = None
    to_state: str | None = None
    to_states: list[str] | None = None  # any of these (the dashboard's failure and throughput views)


def filtered(owner_id: int, f: EventFilters) -> Select[tuple[LogEvent]]:
    # Each event has exactly one job, one app and one site: these inner joins never duplicate rows.
    query = (
        select(LogEvent)
        .join(Job, LogEvent.job_id == Job.id)
        .join(App, Job.app_id == App.id)
        .join(Site, App.site_id == Site.id)
        .where(Site.owner_id == owner_id)
    )
    terms: list[ColumnElement[bool]] = []
    if f.ids:
        terms.append(LogEvent.id == func.any(bigint_array(f.ids)))
    if f.job_ids:
        terms.append(LogEvent.job_id == func.any(bigint_array(f.job_ids)))
    if f.batch_job_id is not None:
        terms.append(Job.batch_job_id == f.batch_job_id)
    if f.scheduler_id is not None:
        batch_ids = (
            select(BatchJob.id)
            .join(Site, BatchJob.site_id == Site.id)
            .where(BatchJob.scheduler_id == f.scheduler_id, Site.owner_id == owner_id)
        )
        terms.append(Job.batch_job_id.in_(batch_ids.scalar_subquery()))
    if f.tags:
        terms.append(Job.tags.contains(f.tags))
    if f.data:
        terms.append(LogEvent.data.contains(f.data))
    if f.timestamp_before is not None:
        terms.append(LogEvent.timestamp <= f.timestamp_before)
    if f.timestamp_after is not None:
        terms.append(LogEvent.timestamp >= f.timestamp_after)
    if f.from_state is not None:
        terms.append(LogEvent.from_state == f.from_state)
    if f.to_state is not None:
        terms.append(LogEvent.to_state == f.to_state)
    if f.to_states:
        terms.append(LogEvent.to_state.in_(f.to_states))
    return query.where(*terms)


def page(
    db: Session, query: Select[tuple[LogEvent]], ordering: str | None, limit: int, offset: int
) -> tuple[int, list[LogEvent]]:
    count = db.scalar(select(func.count()).select_from(query.subquery())) or 0
    order: list[Any] = [LogEvent.timestamp.desc(), LogEvent.id]
    if ordering == "timestamp":
        order = [LogEvent.timestamp.asc(), LogEvent.id]
    rows = list(db.scalars(query.order_by(*order).limit(limit).offset(offset))) if limit else []
    return count, rows


def with_job(owner_id: int, f: EventFilters, limit: int, site_id: int | None = None) -> Select[Any]:
    """The newest `limit` matching events (of one site's jobs, if given), each with its job's workdir and
    state and its app and site names."""
    query = filtered(owner_id, f)
    if site_id is not None:
        query = query.where(App.site_id == site_id)
    query = query.add_columns(
        Job.workdir, Job.state.label("job_state"), App.name.label("app_name"), Site.name.label("site_name")
    )
    return query.order_by(LogEvent.timestamp.desc(), LogEvent.id.desc()).limit(limit)


def recent_with_job(
    db: Session, owner_id: int, f: EventFilters, limit: int, site_id: int | None = None
) -> list[Row[Any]]:
    return list(db.execute(with_job(owner_id, f, limit, site_id)))


def per_interval(
    db: Session, owner_id: int, states: dict[str, list[str]], start: datetime, end: datetime, interval: timedelta
) -> list[Row[Any]]:
    """Events from `start` to `end` counted per interval, one count column per entry of `states`, in one query.

    Rows are `(bucket, <name>...)`, bucket 0 being [start, start + interval); intervals without events are
    absent. The owner's events in those states are found through ix_log_events_to_state_timestamp.
    """
    wanted = sorted({state for group in states.values() for state in group})
    query = filtered(owner_id, EventFilters(timestamp_after=start, timestamp_before=end, to_states=wanted))
    bucket = cast(
        func.floor(func.extract("epoch", LogEvent.timestamp - start) / interval.total_seconds()), Integer
    ).label("bucket")
    counts = [func.count().filter(LogEvent.to_state.in_(group)).label(name) for name, group in states.items()]
    return list(db.execute(query.with_only_columns(bucket, *counts).group_by(bucket).order_by(bucket)))
