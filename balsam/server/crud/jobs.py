"""Jobs: set-based bulk create, filtered reads, heterogeneous bulk updates and deletes (spec §5, §12).

Every write runs inside the caller's `with db.begin():`. Bulk statements carry whole arrays or one JSON
document as a single parameter, so 5,000 jobs cost a handful of statements.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import BigInteger, ColumnElement, Integer, Select, bindparam, func, select, text
from sqlalchemy.orm import Session

from balsam.server.api.errors import BadRequest, NotFound
from balsam.server.clock import utcnow
from balsam.server.crud.job_json import (
    bigint_array,
    job_columns,
    job_is_free,
    job_json_column,
    job_rows_json,
    json_array,
    last_update_text,
)
from balsam.server.crud.job_states import (
    StateChange,
    insert_events,
    release_children,
    release_leases,
    resolve_state,
    transfer_status,
)
from balsam.server.db.session import compile_read, read_compiled
from balsam.server.db.tables import App, BatchJob, Job, Site
from balsam.server.schemas.common import MAX_ITEMS_PER_BULK_OP, like_escape
from balsam.server.schemas.jobs import JobState, JobUpdate

TOO_MANY_CREATE = f"Cannot bulk-create more than {MAX_ITEMS_PER_BULK_OP} in a single API call."
TOO_MANY_UPDATE = f"Cannot bulk-update more than {MAX_ITEMS_PER_BULK_OP} in a single API call."
MISSING_IDS = "Could not find some Job IDs"
DUPLICATE_IDS = "Duplicate Job ID keys provided"
logger = logging.getLogger(__name__)
_JOBS = Job.__table__  # Core columns: no ORM row processing on the 5,000-row paths
ORDERINGS = ("last_update", "-last_update", "id", "-id", "state", "-state", "workdir", "-workdir")


def owned_app_ids(owner_id: int | ColumnElement[int]) -> Select[tuple[int]]:
    return select(App.id).join(Site, App.site_id == Site.id).where(Site.owner_id == owner_id)


def owned_condition(owner_id: int) -> ColumnElement[bool]:
    return Job.app_id.in_(owned_app_ids(owner_id).scalar_subquery())


@dataclass
class JobFilters:
    ids: list[int] | None = None
    parent_ids: list[int] | None = None
    app_id: int | None = None
    site_ids: list[int] | None = None
    batch_job_id: int | None = None
    last_update_before: datetime | None = None
    last_update_after: datetime | None = None
    workdir_contains: str | None = None
    states: list[str] | None = None
    state_ne: str | None = None
    tags: dict[str, str] | None = None
    pending_file_cleanup: bool | None = None


def conditions(owner_id: int, f: JobFilters) -> list[ColumnElement[bool]]:
    """The WHERE terms of a JobQuery (spec §5.2), always scoped to the owner. 0 and false are applied."""
    if f.site_ids:
        apps = (
            select(App.id)
            .join(Site, App.site_id == Site.id)
            .where(Site.owner_id == owner_id, App.site_id == func.any(bigint_array(f.site_ids)))
        )
        terms: list[ColumnElement[bool]] = [Job.app_id.in_(apps.scalar_subquery())]
    else:
        terms = [owned_condition(owner_id)]
    if f.ids:
        terms.append(Job.id == func.any(bigint_array(f.ids)))
    if f.parent_ids:
        terms.append(Job.parent_ids.overlap(bigint_array(f.parent_ids)))
    if f.app_id is not None:
        terms.append(Job.app_id == f.app_id)
    if f.batch_job_id is not None:
        terms.append(Job.batch_job_id == f.batch_job_id)
    if f.last_update_before is not None:
        terms.append(Job.last_update <= f.last_update_before)
    if f.last_update_after is not None:
        terms.append(Job.last_update >= f.last_update_after)
    if f.workdir_contains is not None:
        terms.append(Job.workdir.like(f"%{like_escape(f.workdir_contains)}%", escape="\\"))
    if f.states:
        terms.append(Job.state.in_([str(s) for s in f.states]))
    if f.state_ne is not None:
        terms.append(Job.state != str(f.state_ne))
    if f.tags:
        terms.append(Job.tags.contains(f.tags))
    if f.pending_file_cleanup is not None:
        terms.append(Job.pending_file_cleanup.is_(f.pending_file_cleanup))
    return terms


def _order_by(ordering: str | None) -> list[Any]:
    if not ordering:
        return [Job.id]
    column = getattr(Job, ordering.lstrip("-"))
    return [column.desc() if ordering.startswith("-") else column, Job.id]


def count(db: Session, owner_id: int, f: JobFilters) -> int:
    return db.scalar(select(func.count()).select_from(Job).where(*conditions(owner_id, f))) or 0


def list_json(db: Session, owner_id: int, f: JobFilters, ordering: str | None, limit: int, offset: int) -> str:
    """`{"count": n, "results": [...]}` as a JSON string built mostly by PostgreSQL.

    The page is fetched with one extra row: when it comes back short, the total is known without a COUNT
    (which costs a second scan); only a full page, or an empty one past the start, runs the COUNT.
    """
    if limit == 0:
        return f'{{"count":{count(db, owner_id, f)},"results":[]}}'
    order = [ordering, "id"] if ordering and ordering.lstrip("-") != "id" else [ordering or "id"]
    inner = (
        select(*job_columns())
        .where(*conditions(owner_id, f))
        .order_by(*_order_by(ordering))
        .limit(limit + 1)
        .offset(offset)
    )
    rows = list(db.execute(job_rows_json(inner, order)).scalars())
    if len(rows) <= limit and (rows or offset == 0):
        total = offset + len(rows)
    else:
        total = count(db, owner_id, f)
        del rows[limit:]
    return f'{{"count":{total},"results":' + json_array(rows) + "}"


_GET_JSON = compile_read(
    select(job_json_column()).where(
        Job.id == bindparam("job_id", type_=BigInteger),
        Job.app_id.in_(owned_app_ids(bindparam("owner_id", type_=Integer)).scalar_subquery()),
    )
)


def get_json(db: Session, owner_id: int, job_id: int) -> str:
    row = read_compiled(db, _GET_JSON, {"job_id": job_id, "owner_id": owner_id}).scalar()
    if row is None:
        raise NotFound()
    return str(row)


def list_rows(
    db: Session, owner_id: int, f: JobFilters, ordering: str | None, limit: int, offset: int
) -> tuple[int, list[Job]]:
    """The same filtered, ordered page as `list_json`, as Job objects (the dashboard renders them)."""
    total = count(db, owner_id, f)
    if not limit or offset >= total:
        return total, []
    query = select(Job).where(*conditions(owner_id, f)).order_by(*_order_by(ordering)).limit(limit).offset(offset)
    return total, list(db.scalars(query))


def get_row(db: Session, owner_id: int, job_id: int) -> Job:
    job = db.scalars(select(Job).where(Job.id == job_id, owned_condition(owner_id))).first()
    if job is None:
        raise NotFound()
    return job


def counts_by_site_and_state(db: Session, owner_id: int) -> list[tuple[int, str, int]]:
    """(site id, state, number of jobs) for every pair that has jobs: one GROUP BY over the owner's jobs."""
    query = (
        select(App.site_id, Job.state, func.count())
        .join(App, Job.app_id == App.id)
        .where(*conditions(owner_id, JobFilters()))
        .group_by(App.site_id, Job.state)
    )
    return [(site_id, state, n) for site_id, state, n in db.execute(query)]


# ---------------------------------------------------------------------------------------------- create

# The jobs and their CREATED events in one statement (spec §5.3 step 8).
_INSERT_JOBS = text(
    """
    WITH inserted AS (
    INSERT INTO jobs (id, app_id, workdir, tags, parent_ids, state, last_update, serialized_parameters,
        serialized_return_value, serialized_exception, data, return_code, pending_file_cleanup, num_nodes,
        ranks_per_node, threads_per_rank, threads_per_core, gpus_per_rank, node_packing_count, wall_time_min,
        launch_params, batch_job_id)
    SELECT r.id, r.app_id, r.workdir, r.tags, r.parent_ids, r.state, :now, r.serialized_parameters, '', '',
        r.data, r.return_code, true, r.num_nodes, r.ranks_per_node, r.threads_per_rank, r.threads_per_core,
        r.gpus_per_rank, r.node_packing_count, r.wall_time_min, r.launch_params, NULL
    FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(
        id bigint, app_id integer, workdir text, tags jsonb, parent_ids bigint[], state text,
        serialized_parameters text, data jsonb, return_code integer, num_nodes integer, ranks_per_node integer,
        threads_per_rank integer, threads_per_core integer, gpus_per_rank float8, node_packing_count integer,
        wall_time_min integer, launch_params jsonb)
    RETURNING id, state)
    INSERT INTO log_events (job_id, timestamp, from_state, to_state, data)
    SELECT id, :now, 'CREATED', state, '{}'::jsonb FROM inserted
    """
)

_INSERT_TRANSFERS = text(
    """
    INSERT INTO transfer_items (job_id, direction, local_path, remote_path, location_alias, recursive, state,
        task_id, transfer_info)
    SELECT u.job_id, u.direction, u.local_path, u.remote_path, u.location_alias, u.recursive,
        CASE WHEN u.direction = 'in' THEN 'pending' ELSE 'awaiting_job' END, '', '{}'::jsonb
    FROM unnest(CAST(:job_ids AS bigint[]), CAST(:directions AS text[]), CAST(:local_paths AS text[]),
        CAST(:remote_paths AS text[]), CAST(:aliases AS text[]), CAST(:recursives AS boolean[]))
        AS u(job_id, direction, local_path, remote_path, location_alias, recursive)
    """
)


def bulk_create(db: Session, owner_id: int, rows: list[dict[str, Any]]) -> str:
    """Create the jobs all-or-nothing and return the JSON array of them, in input order (spec §5.3).

    `rows` are validated JobCreate values as plain dicts with every field present (see
    `balsam.server.schemas.jobs.job_create_rows`); they are completed in place into the reply objects.
    """
    if len(rows) > MAX_ITEMS_PER_BULK_OP:
        raise BadRequest(TOO_MANY_CREATE)
    if not rows:
        return "[]"
    now = utcnow()
    app_ids = sorted({row["app_id"] for row in rows})
    apps = {
        r.id: r
        for r in db.execute(
            select(App.id, App.name, App.transfers, Site.transfer_locations)
            .join(Site, App.site_id == Site.id)
            .where(Site.owner_id == owner_id, App.id == func.any(bigint_array(app_ids)))
        )
    }
    if len(apps) != len(app_ids):
        raise BadRequest("Could not find one or more Apps. Double check app_id fields.", 404)
    parent_ids = sorted({p for row in rows for p in row["parent_ids"]})
    parent_states: dict[int, str] = {}
    if parent_ids:
        # FOR SHARE: a parent finishing concurrently waits for us, then its child release sees our jobs.
        parent_states = {
            r[0]: r[1]
            for r in db.execute(
                select(Job.id, Job.state)
                .where(Job.id == func.any(bigint_array(parent_ids)), owned_condition(owner_id))
                .order_by(Job.id)
                .with_for_update(read=True)
            )
        }
        if len(parent_states) != len(parent_ids):
            raise BadRequest("Could not find one or more Jobs set as parents. Double check parent_ids fields.", 404)
    if len({row["workdir"] for row in rows}) != len(rows):
        raise BadRequest("Workdirs must be unique for each call to bulk-create Jobs.")

    ids = [
        r[0]
        for r in db.execute(
            text("SELECT nextval(pg_get_serial_sequence('jobs', 'id')) FROM generate_series(1, :n)"), {"n": len(rows)}
        )
    ]
    t_job: list[int] = []
    t_dir: list[str] = []
    t_local: list[str] = []
    t_remote: list[str] = []
    t_alias: list[str] = []
    t_rec: list[bool] = []
    # One document serves as the INSERT parameter and as the reply: jsonb_to_recordset ignores the keys it
    # does not declare, and the reply holds exactly the values the rows get.
    stamp = last_update_text(now)
    finished = JobState.JOB_FINISHED.value
    for job_id, row in zip(ids, rows, strict=True):
        has_in = False
        transfers = row.pop("transfers")
        if transfers:
            app = apps[row["app_id"]]
            for slot_name, spec in transfers.items():
                slot = (app.transfers or {}).get(slot_name)
                if slot is None:
                    raise BadRequest(f"App {app.name} has no Transfer slot named {slot_name}")
                if spec["location_alias"] not in (app.transfer_locations or {}):
                    raise BadRequest(f"Site has no Transfer URL named {spec['location_alias']}")
                direction = slot["direction"]
                has_in = has_in or direction == "in"
                t_job.append(job_id)
                t_dir.append(direction)
                t_local.append(slot["local_path"])
                t_remote.append(spec["path"])
                t_alias.append(spec["location_alias"])
                t_rec.append(bool(slot.get("recursive", False)))
        parents = row["parent_ids"]
        if parents:
            parents = row["parent_ids"] = sorted(set(parents))
        if parents and any(parent_states[p] != finished for p in parents):
            row["state"] = JobState.AWAITING_PARENTS.value
        elif has_in:
            row["state"] = JobState.READY.value
        else:
            row["state"] = JobState.STAGED_IN.value
        row["id"] = job_id
        row["last_update"] = stamp
        row["serialized_return_value"] = ""
        row["serialized_exception"] = ""
        row["pending_file_cleanup"] = True
        row["batch_job_id"] = None
    document = json.dumps(rows)
    db.execute(_INSERT_JOBS, {"rows": document, "now": now})
    if t_job:
        db.execute(
            _INSERT_TRANSFERS,
            {
                "job_ids": t_job,
                "directions": t_dir,
                "local_paths": t_local,
                "remote_paths": t_remote,
                "aliases": t_alias,
                "recursives": t_rec,
            },
        )
    return document


# ---------------------------------------------------------------------------------------------- update

# Per-column "was this key sent" test: `jsonb_exists(p, key)`. A column no item sends is left out.
_CASTS = {
    "workdir": "e.p->>'workdir'",
    "tags": "e.p->'tags'",
    "serialized_parameters": "e.p->>'serialized_parameters'",
    "data": "e.p->'data'",
    "return_code": "CAST(e.p->>'return_code' AS integer)",
    "num_nodes": "CAST(e.p->>'num_nodes' AS integer)",
    "ranks_per_node": "CAST(e.p->>'ranks_per_node' AS integer)",
    "threads_per_rank": "CAST(e.p->>'threads_per_rank' AS integer)",
    "threads_per_core": "CAST(e.p->>'threads_per_core' AS integer)",
    "launch_params": "e.p->'launch_params'",
    "gpus_per_rank": "CAST(e.p->>'gpus_per_rank' AS float8)",
    "node_packing_count": "CAST(e.p->>'node_packing_count' AS integer)",
    "wall_time_min": "CAST(e.p->>'wall_time_min' AS integer)",
    "batch_job_id": "CAST(e.p->>'batch_job_id' AS integer)",
    "state": "e.p->>'state'",
    "pending_file_cleanup": "CAST(e.p->>'pending_file_cleanup' AS boolean)",
    "serialized_return_value": "e.p->>'serialized_return_value'",
    "serialized_exception": "e.p->>'serialized_exception'",
}


def _update_statement(keys: set[str]) -> str:
    sets = [
        f"{col} = CASE WHEN jsonb_exists(e.p, '{col}') THEN {expr} ELSE jobs.{col} END"
        for col, expr in _CASTS.items()
        if col in keys
    ]
    sets.append("last_update = :now")
    return (
        "UPDATE jobs SET " + ", ".join(sets) + " FROM jsonb_array_elements(CAST(:payload AS jsonb)) AS e(p)"
        " WHERE jobs.id = CAST(e.p->>'id' AS bigint)"
    )


def apply_updates(
    db: Session, owner_id: int, items: Sequence[tuple[int, JobUpdate]], now: datetime | None = None
) -> tuple[int, list[dict[str, Any]]]:
    """Apply each item's own keys to its job (spec §5.4, §5.5). Returns (jobs updated, event dicts).

    A missing/foreign job id or an unknown batch job fails the whole request with a 400 and nothing is
    applied (the caller's transaction rolls back). Any state may follow any other (§14.10).
    """
    now = now or utcnow()
    ids = sorted(job_id for job_id, _ in items)
    if not ids:
        return 0, []
    current = {
        r.id: r
        for r in db.execute(
            select(_JOBS.c.id, _JOBS.c.state)
            .where(_JOBS.c.id == func.any(bigint_array(ids)), owned_condition(owner_id))
            .order_by(_JOBS.c.id)
            .with_for_update()
        )
    }
    if len(current) != len(ids):
        raise BadRequest(MISSING_IDS)

    batch_ids = {
        u.batch_job_id for _, u in items if "batch_job_id" in u.model_fields_set and u.batch_job_id is not None
    }
    if batch_ids:
        # Existence only, not ownership: upstream stores another user's batch job id here and answers 200,
        # and a 4xx would stall the client (spec §14.13). It reveals nothing, since every list is owner-scoped.
        found = set(db.scalars(select(BatchJob.id).where(BatchJob.id == func.any(bigint_array(sorted(batch_ids))))))
        if missing := sorted(batch_ids - found):
            raise BadRequest(f"No batch_job with id {missing[0]}")

    state_jobs = [
        job_id
        for job_id, u in items
        if u.state is not None and "state" in u.model_fields_set and u.state != current[job_id].state
    ]
    status = transfer_status(db, [j for j, u in items if u.state in (JobState.READY, JobState.POSTPROCESSED)])
    payload: list[dict[str, Any]] = []
    keys: set[str] = set()
    changes: list[StateChange] = []
    stage_out: list[int] = []
    released: list[int] = []
    changing = set(state_jobs)
    # One pydantic-core call dumps every item's sent keys (exclude_unset), instead of 5,000 model_dumps.
    dumped: list[dict[str, Any]] = _UPDATE_DUMPER.dump_python([u for _, u in items], mode="json", exclude_unset=True)
    for (job_id, update), sent_values in zip(items, dumped, strict=True):
        row = current[job_id]
        sent = update.model_fields_set
        values = {k: v for k, v in sent_values.items() if k in _UPDATABLE}
        if job_id in changing:
            assert update.state is not None
            data = dict(update.state_data or {}) if "state_data" in sent else {}
            stored, data = resolve_state(job_id, update.state, status, data)
            values["state"] = str(stored)
            if stored != JobState.RUNNING:
                released.append(job_id)
            if stored == JobState.POSTPROCESSED:
                stage_out.append(job_id)
            timestamp = update.state_timestamp if update.state_timestamp is not None else now
            changes.append(StateChange(job_id, row.state, stored, timestamp, data))
        else:
            values.pop("state", None)
        keys.update(values)
        values["id"] = job_id
        payload.append(values)

    db.execute(text(_update_statement(keys)), {"payload": json.dumps(payload), "now": now})
    release_leases(db, released)
    if stage_out:
        db.execute(
            text(
                "UPDATE transfer_items SET state = 'pending' WHERE job_id = ANY(:ids) AND direction = 'out'"
                " AND state = 'awaiting_job'"
            ),
            {"ids": sorted(stage_out)},
        )
    events = insert_events(db, changes)
    finished = [c.job_id for c in changes if c.to_state == JobState.JOB_FINISHED]
    events += release_children(db, finished, now)
    return len(ids), events


_UPDATABLE = frozenset(_CASTS)
_UPDATE_DUMPER: TypeAdapter[list[JobUpdate]] = TypeAdapter(list[JobUpdate])


def bulk_patch(db: Session, owner_id: int, items: Sequence[tuple[int, JobUpdate]]) -> tuple[int, list[dict[str, Any]]]:
    if len(items) > MAX_ITEMS_PER_BULK_OP:
        raise BadRequest(TOO_MANY_UPDATE)
    if len({job_id for job_id, _ in items}) != len(items):
        raise BadRequest(DUPLICATE_IDS)
    return apply_updates(db, owner_id, items)


def update_by_query(db: Session, owner_id: int, f: JobFilters, update: JobUpdate) -> tuple[int, list[dict[str, Any]]]:
    """`PUT /jobs/?filters`: the 5000 cap is checked with a plain count before any row is locked."""
    if count(db, owner_id, f) > MAX_ITEMS_PER_BULK_OP:
        raise BadRequest(TOO_MANY_UPDATE)
    ids = list(db.scalars(select(Job.id).where(*conditions(owner_id, f)).order_by(Job.id)))
    if len(ids) > MAX_ITEMS_PER_BULK_OP:  # rows inserted since the count
        raise BadRequest(TOO_MANY_UPDATE)
    return apply_updates(db, owner_id, [(job_id, update) for job_id in ids])


# ---------------------------------------------------------------------------------------------- delete


@dataclass
class DeleteResult:
    """What a delete did. `kept` counts matching jobs left in place because a session holds them (a launcher
    is running them) or, for a bulk delete, another request has them locked: upstream skips those silently
    and answers 204 (spec §5.2, §14.13), so the route reports them in a response header instead."""

    deleted: list[int]
    kept: int
    events: list[dict[str, Any]]


def delete_one(db: Session, owner_id: int, job_id: int) -> DeleteResult:
    """Delete one job (404 if missing or foreign); a job held by a session is kept (spec §14.13)."""
    row = db.execute(select(Job.id).where(Job.id == job_id, owned_condition(owner_id)).with_for_update()).first()
    if row is None:
        raise NotFound()
    # Read after the row lock (a new snapshot): a lease committed while we waited for the lock is seen.
    holder = db.scalar(text("SELECT session_id FROM job_leases WHERE job_id = :id"), {"id": job_id})
    if holder is not None:
        logger.warning("DELETE /jobs/%d kept the job: session %d holds it", job_id, holder)
        return DeleteResult([], 1, [])
    db.execute(text("DELETE FROM jobs WHERE id = :id"), {"id": job_id})
    return DeleteResult([job_id], 0, release_children(db, [job_id], utcnow()))


def delete_by_query(db: Session, owner_id: int, f: JobFilters) -> DeleteResult:
    """Delete matching jobs not held by a session nor row-locked (those are kept, spec §5.2).

    Children whose parents are now all finished or deleted are released.
    """
    locked = select(Job.id).where(*conditions(owner_id, f), job_is_free()).order_by(Job.id)
    candidates = list(db.scalars(locked.with_for_update(skip_locked=True)))
    ids: list[int] = []
    if candidates:
        # The lease test again, in a new snapshot: a job acquired (and committed) after the SELECT above took
        # its snapshot, but before it locked the row, is seen here. Acquire locks the job row before it leases
        # it, so no new lease can appear on the rows locked now.
        ids = sorted(
            db.scalars(
                text(
                    "DELETE FROM jobs WHERE id = ANY(:ids)"
                    " AND NOT EXISTS (SELECT 1 FROM job_leases l WHERE l.job_id = jobs.id) RETURNING id"
                ),
                {"ids": candidates},
            )
        )
    kept = count(db, owner_id, f)
    if kept:
        logger.warning("DELETE /jobs/ kept %d matching jobs: held by a session or locked by another request", kept)
    return DeleteResult(ids, kept, release_children(db, ids, utcnow()) if ids else [])
