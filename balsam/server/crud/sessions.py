"""Sessions: leases on jobs, acquisition and expiry (spec §8, §12.15, §12.16, §14.6, §14.7).

Lock order, everywhere: the session row(s) first, then job rows in id order, then their lease rows
(`job_leases`). Acquire never waits on a job row (SKIP LOCKED) and only leases jobs whose rows it has locked;
expiry waits only on the RUNNING jobs of the sessions it holds, and ends their other leases without touching
the job rows.

`expire_sessions` is the one code path that ends a lease: `DELETE /sessions/{id}`, the background sweeper
(balsam.server.sweeper) and a tick or acquire that finds its own session already expired all use it.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    Float,
    Integer,
    Row,
    Table,
    bindparam,
    delete,
    func,
    insert,
    literal_column,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, aggregate_order_by
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session as DbSession

from balsam.server.api.errors import BadRequest, NotFound
from balsam.server.clock import utcnow
from balsam.server.crud.job_json import bigint_array, job_is_free, job_json_column, json_array
from balsam.server.db.tables import App, BatchJob, Job, JobLease, Session, Site
from balsam.server.schemas.jobs import JobState
from balsam.server.schemas.sessions import SORT_LONG_LARGE_FIRST, SessionAcquire, SessionCreate

EXPIRED_MESSAGE = "Session expired: job was stuck in RUNNING state"
FINISHED_BATCH_JOB_STATE = "finished"
# Running sums of float footprints (num_nodes / node_packing_count) get this much slack against the cap.
_FOOTPRINT_EPSILON = 1e-9
_LEASE_ATTEMPTS = 4  # locking statements per acquire at most (see acquire)


@dataclass
class ExpiryResult:
    """What ending some leases did: the sessions removed and the RUN_TIMEOUT events, per site owner."""

    session_ids: list[int] = field(default_factory=list)
    events_by_owner: dict[int, list[dict[str, Any]]] = field(default_factory=dict)

    def merge(self, other: ExpiryResult) -> None:
        self.session_ids.extend(other.session_ids)
        for owner, events in other.events_by_owner.items():
            self.events_by_owner.setdefault(owner, []).extend(events)

    @property
    def event_count(self) -> int:
        return sum(len(events) for events in self.events_by_owner.values())


@dataclass
class LeaseOutcome:
    """Result of a tick or acquire. `expired` is set when the session had already expired (the caller
    commits, publishes the events and answers 404); otherwise `jobs_json` holds the acquired jobs."""

    expired: ExpiryResult | None = None
    jobs_json: str = "[]"
    acquired: int = 0  # jobs in `jobs_json`


def _int_array(values: Sequence[int]) -> Any:
    return bindparam("session_ids", list(values), type_=ARRAY(Integer))


# --------------------------------------------------------------------------------------------------
# Create, list


def create(db: DbSession, owner_id: int, body: SessionCreate) -> Session:
    # FOR KEY SHARE: a concurrent delete of the site or batch job cannot slip between check and insert.
    site = db.execute(
        select(Site.id).where(Site.id == body.site_id, Site.owner_id == owner_id).with_for_update(key_share=True)
    ).first()
    if site is None:
        raise BadRequest(f"No site with ID {body.site_id}")
    if body.batch_job_id is not None:
        batch_job = db.execute(
            select(BatchJob.id)
            .where(BatchJob.id == body.batch_job_id, BatchJob.site_id == body.site_id)
            .with_for_update(key_share=True)
        ).first()
        if batch_job is None:
            raise BadRequest(f"No batch_job with id {body.batch_job_id}")
    row = db.execute(
        insert(Session)
        .values(site_id=body.site_id, batch_job_id=body.batch_job_id, heartbeat=utcnow())
        .returning(Session)
    ).scalar_one()
    return row


def list_owned(db: DbSession, owner_id: int, ids: list[int] | None) -> list[Session]:
    query = select(Session).join(Site, Session.site_id == Site.id).where(Site.owner_id == owner_id)
    if ids:
        query = query.where(Session.id.in_(ids))
    return list(db.scalars(query.order_by(Session.id)))


# --------------------------------------------------------------------------------------------------
# Expiry: the one code path shared by DELETE, the sweeper, and tick/acquire on an expired session

_TIME_OUT_RUNNING = text(
    """
    WITH running AS (
        SELECT jobs.id FROM jobs JOIN job_leases ON job_leases.job_id = jobs.id
        WHERE job_leases.session_id = ANY(:session_ids) AND jobs.state = :running
        ORDER BY jobs.id
        FOR UPDATE OF jobs
    ), timed_out AS (
        UPDATE jobs SET state = :timeout, last_update = :now
        FROM running WHERE jobs.id = running.id
        RETURNING jobs.id, jobs.app_id
    ), events AS (
        INSERT INTO log_events (job_id, timestamp, from_state, to_state, data)
        SELECT id, :now, :running, :timeout, CAST(:data AS jsonb) FROM timed_out
        RETURNING id, job_id, timestamp, from_state, to_state, data
    )
    SELECT sites.owner_id, events.id, events.job_id, events.timestamp, events.from_state, events.to_state,
           events.data
    FROM events
    JOIN timed_out ON timed_out.id = events.job_id
    JOIN apps ON apps.id = timed_out.app_id
    JOIN sites ON sites.id = apps.site_id
    ORDER BY events.job_id
    """
)

# Every lease of these sessions (the RUNNING jobs among them have just timed out); the jobs keep their state.
_RELEASE_HELD = text("DELETE FROM job_leases WHERE session_id = ANY(:session_ids)")


def expire_sessions(db: DbSession, session_ids: Sequence[int], now: datetime) -> ExpiryResult:
    """End these leases; the caller holds their session rows locked (FOR UPDATE).

    (a) RUNNING jobs go to RUN_TIMEOUT with an event, which also releases them; (b) every other job the
    sessions held is released and keeps its state; (c) the sessions are deleted.
    """
    result = ExpiryResult()
    if not session_ids:
        return result
    ids = sorted(set(session_ids))
    rows = db.execute(
        _TIME_OUT_RUNNING.bindparams(_int_array(ids)),
        {
            "running": JobState.RUNNING.value,
            "timeout": JobState.RUN_TIMEOUT.value,
            "now": now,
            "data": json.dumps({"message": EXPIRED_MESSAGE}),
        },
    ).all()
    by_owner: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_owner[row.owner_id].append(
            {
                "id": row.id,
                "job_id": row.job_id,
                "timestamp": row.timestamp,
                "from_state": row.from_state,
                "to_state": row.to_state,
                "data": row.data,
            }
        )
    db.execute(_RELEASE_HELD.bindparams(_int_array(ids)))
    deleted = db.scalars(delete(Session).where(Session.id.in_(ids)).returning(Session.id)).all()
    result.session_ids = sorted(deleted)
    result.events_by_owner = dict(by_owner)
    return result


def expired_condition(now: datetime, expiry_seconds: float) -> Any:
    """SQL: the session's heartbeat is too old, or its batch job has finished (join BatchJob outer)."""
    return or_(
        Session.heartbeat <= now - timedelta(seconds=expiry_seconds),
        BatchJob.state == FINISHED_BATCH_JOB_STATE,
    )


def _lock_owned(db: DbSession, owner_id: int, session_id: int, now: datetime, expiry_seconds: float) -> Row[Any]:
    """Lock the caller's session row (or 404) and report whether its lease has run out."""
    row = db.execute(
        select(
            Session.id,
            Session.site_id,
            Session.batch_job_id,
            expired_condition(now, expiry_seconds).label("expired"),
        )
        .join(Site, Session.site_id == Site.id)
        .outerjoin(BatchJob, Session.batch_job_id == BatchJob.id)
        .where(Session.id == session_id, Site.owner_id == owner_id)
        .with_for_update(of=Session)
    ).first()
    if row is None:
        raise NotFound()
    return row


def delete_owned(db: DbSession, owner_id: int, session_id: int, now: datetime) -> ExpiryResult:
    row = db.execute(
        select(Session.id)
        .join(Site, Session.site_id == Site.id)
        .where(Session.id == session_id, Site.owner_id == owner_id)
        .with_for_update(of=Session)
    ).first()
    if row is None:
        raise NotFound()
    return expire_sessions(db, [row.id], now)


def tick(db: DbSession, owner_id: int, session_id: int, now: datetime, expiry_seconds: float) -> LeaseOutcome:
    session = _lock_owned(db, owner_id, session_id, now, expiry_seconds)
    if session.expired:
        return LeaseOutcome(expired=expire_sessions(db, [session.id], now))
    db.execute(update(Session).where(Session.id == session.id).values(heartbeat=now))
    return LeaseOutcome()


# --------------------------------------------------------------------------------------------------
# Acquire


def acquire(
    db: DbSession, owner_id: int, session_id: int, spec: SessionAcquire, now: datetime, expiry_seconds: float
) -> LeaseOutcome:
    """Lock and hand out jobs to the session (spec §8 steps 1-5), set-based, in the caller's transaction."""
    session = _lock_owned(db, owner_id, session_id, now, expiry_seconds)
    if session.expired:
        return LeaseOutcome(expired=expire_sessions(db, [session.id], now))
    db.execute(update(Session).where(Session.id == session.id).values(heartbeat=now))

    app_query = select(App.id).where(App.site_id == session.site_id)
    if spec.app_ids:
        app_query = app_query.where(App.id == func.any(bigint_array(spec.app_ids)))
    app_ids = list(db.scalars(app_query))
    if not app_ids or not spec.states:
        return LeaseOutcome()

    shape = _LeaseShape(
        mpi=spec.max_aggregate_nodes is not None,
        long_large_first=spec.sort_by == SORT_LONG_LARGE_FIRST,
        stamp_batch_job=session.batch_job_id is not None,
        filter_tags=bool(spec.filter_tags),
        max_wall_time=bool(spec.max_wall_time_min),  # null or 0 means no limit (spec §14.6)
        max_nodes=bool(spec.max_nodes_per_job),
        serial_only=spec.serial_only,
    )
    params: dict[str, Any] = {
        "app_ids": app_ids,
        "states": [s.value for s in spec.states],
        "filter_tags": json.dumps(spec.filter_tags),
        "max_wall_time": spec.max_wall_time_min,
        "max_nodes": spec.max_nodes_per_job,
        "cap": (spec.max_aggregate_nodes or 0.0) + _FOOTPRINT_EPSILON,
        "session_id": session.id,
        "batch_job_id": session.batch_job_id,
    }
    sql, constants = _lease_sql(db, shape)
    params.update(constants)
    # A candidate can be leased by another session between this statement's snapshot and its row lock (that
    # session committed in between; job rows are not written, so the lock does not re-check them), and the
    # lease insert then skips it. Under many concurrent launchers whole batches came back empty that way while
    # thousands of jobs were free. So when candidates were lost to such leases, lease again, from a new
    # snapshot that sees them: the serial path fills up to max_num_jobs, the MPI path tries again only when it
    # got nothing (its kept set is a prefix of one ordering; topping it up from a second one would not be).
    pieces: list[str] = []  # comma-joined job objects, one piece per statement that leased any
    acquired = 0
    wanted = spec.max_num_jobs
    for _ in range(_LEASE_ATTEMPTS):
        result = db.connection().exec_driver_sql(sql, {**params, "limit": wanted}).one()
        if result.acquired:
            pieces.append(result.jobs)
        acquired += result.acquired
        wanted -= result.acquired
        if result.kept == result.acquired or not wanted or (shape.mpi and acquired):
            break
    return LeaseOutcome(jobs_json=json_array(pieces), acquired=acquired)


@dataclass(frozen=True)
class _LeaseShape:
    """What decides the text of the lease statement; the values go in as parameters."""

    mpi: bool
    long_large_first: bool
    stamp_batch_job: bool
    filter_tags: bool
    max_wall_time: bool
    max_nodes: bool
    serial_only: bool


# The lease statement's SQL per shape. SQLAlchemy does not cache statements that contain PostgreSQL's
# INSERT ... ON CONFLICT (its Insert sets inherit_cache = False), so this one was built and compiled on every
# acquire: 2.5 ms of CPU each, a tenth of a worker's CPU under 32 launchers. There are at most 2^7 shapes.
_LEASE_SQL_CACHE: dict[_LeaseShape, tuple[str, dict[str, Any]]] = {}
_LEASE_PARAMS = frozenset(
    {"app_ids", "states", "filter_tags", "max_wall_time", "max_nodes", "cap", "session_id", "batch_job_id", "limit"}
)


def _lease_sql(db: DbSession, shape: _LeaseShape) -> tuple[str, dict[str, Any]]:
    """The statement's SQL for the driver and the constants SQLAlchemy made parameters of (GREATEST(x, 0)...)."""
    cached = _LEASE_SQL_CACHE.get(shape)
    if cached is None:
        compiled = _lease_statement(shape).compile(dialect=db.get_bind().dialect)
        constants = {k: v for k, v in compiled.params.items() if k not in _LEASE_PARAMS}
        cached = _LEASE_SQL_CACHE[shape] = (compiled.string, constants)
    return cached


def _lease_statement(shape: _LeaseShape) -> Any:
    """One locking statement: lock up to `limit` candidates (SKIP LOCKED), keep them (MPI: the capped prefix),
    insert their leases. Its one row: `jobs`, the leased jobs' JSON objects comma-joined in reply order (null
    when none was leased), `acquired`, how many, and `kept`, how many candidates were kept, so the caller can
    tell how many were found leased already by a session that committed after this statement's snapshot.
    Parameters are named, see acquire."""
    jobs = cast(Table, Job.__table__)
    conditions: list[Any] = [
        jobs.c.app_id == func.any(bigint_array([], "app_ids")),
        job_is_free(jobs),
        jobs.c.state == func.any(bindparam("states", type_=ARRAY(jobs.c.state.type))),
    ]
    if shape.filter_tags:
        conditions.append(jobs.c.tags.contains(bindparam("filter_tags", type_=JSONB)))
    if shape.max_wall_time:
        conditions.append(jobs.c.wall_time_min <= bindparam("max_wall_time", type_=Integer))
    if shape.max_nodes:
        conditions.append(jobs.c.num_nodes <= bindparam("max_nodes", type_=Integer))
    if shape.serial_only:
        conditions.extend([jobs.c.num_nodes == 1, jobs.c.ranks_per_node == 1])

    order: list[Any]
    if not shape.mpi:
        order = [jobs.c.id]
    elif shape.long_large_first:
        order = [jobs.c.wall_time_min.desc(), jobs.c.num_nodes.desc(), jobs.c.node_packing_count.desc(), jobs.c.id]
    else:
        order = [jobs.c.num_nodes, jobs.c.node_packing_count.desc(), jobs.c.wall_time_min.desc(), jobs.c.id]

    # Node footprint of one job; GREATEST/NULLIF keep a bad row from breaking anyone's acquire (§12.8).
    footprint = func.greatest(jobs.c.num_nodes, 0).cast(Float) / func.coalesce(
        func.nullif(func.greatest(jobs.c.node_packing_count, 1), 0), 1
    )
    candidates = (
        select(jobs.c.id, footprint.label("footprint"), *_sort_columns(jobs))
        .where(*conditions)
        .order_by(*order)
        .limit(bindparam("limit", type_=Integer))
        .with_for_update(of=jobs, skip_locked=True)
        .cte("candidates")
    )
    if shape.mpi:
        cand_order = _cte_order(candidates, shape.long_large_first)
        running = (
            select(
                candidates.c.id,
                func.sum(candidates.c.footprint).over(order_by=cand_order, rows=(None, 0)).label("running"),
            )
        ).subquery("running")
        kept: Any = select(running.c.id).where(running.c.running <= bindparam("cap", type_=Float)).subquery()
    else:
        kept = select(candidates.c.id).subquery()

    # The lease rows. The primary key is the last word on exclusivity: a job leased (and committed) by another
    # session after this statement's snapshot was taken looks free above, but its lease already exists, so
    # ON CONFLICT skips it, and only the leases inserted here are handed out.
    holder = bindparam("session_id", type_=Integer)
    leases = cast(Table, JobLease.__table__)
    leased = (
        pg_insert(leases)
        .from_select(["job_id", "session_id"], select(kept.c.id, holder).order_by(kept.c.id))
        .on_conflict_do_nothing(index_elements=[leases.c.job_id])
        .returning(leases.c.job_id)
        .cte("leased")
    )
    acquired: Any
    if shape.stamp_batch_job:
        # Stamping the batch job is the one write to the job rows that acquire still makes.
        acquired = (
            update(jobs)
            .where(jobs.c.id == leased.c.job_id)
            .values(batch_job_id=bindparam("batch_job_id", type_=Integer))
            .returning(jobs.c.id, *_sort_columns(jobs), job_json_column(jobs, session_id=holder).label("job"))
            .cte("acquired")
        )
    else:
        acquired = (
            select(jobs.c.id, *_sort_columns(jobs), job_json_column(jobs, session_id=holder).label("job"))
            .join(leased, jobs.c.id == leased.c.job_id)
            .cte("acquired")
        )
    reply_order = _cte_order(acquired, shape.long_large_first) if shape.mpi else [acquired.c.id]
    # One row: the leased jobs' objects joined in reply order (PostgreSQL joins them faster than the driver
    # hands the caller a row per job), how many were leased, and how many candidates were kept.
    kept_count = select(func.count()).select_from(kept).scalar_subquery()
    return select(
        kept_count.label("kept"),
        select(func.count()).select_from(acquired).scalar_subquery().label("acquired"),
        select(func.string_agg(acquired.c.job, aggregate_order_by(literal_column("','"), *reply_order)))
        .scalar_subquery()
        .label("jobs"),
    )


def _sort_columns(jobs: Any) -> list[Any]:
    return [jobs.c.num_nodes, jobs.c.node_packing_count, jobs.c.wall_time_min]


def _cte_order(cte: Any, long_large_first: bool) -> list[Any]:
    c = cte.c
    if long_large_first:
        return [c.wall_time_min.desc(), c.num_nodes.desc(), c.node_packing_count.desc(), c.id]
    return [c.num_nodes, c.node_packing_count.desc(), c.wall_time_min.desc(), c.id]
