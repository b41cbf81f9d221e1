"""Job state changes (spec §5.5, §14.10) and the server-side state changes they trigger.

Transitions are free: a client may set any JobState from any other, as upstream allows and as the published
client and its users rely on (`filter(state="FAILED").update(state="RESTART_READY")`, skipping a job with
`job.state = "JOB_FINISHED"`). A 4xx here would not reach the user as an error: the client retries it for
about 34 minutes (spec §11). Asking for the current state is a no-op: no event and no side effect.

Side effects of a real change (§5.5): a stored state other than RUNNING ends the job's lease (its `job_leases`
row, i.e. `session_id` becomes null); READY becomes
STAGED_IN when no `in` item is pending; POSTPROCESSED becomes JOB_FINISHED when no `out` item is pending,
else its `awaiting_job` out-items become `pending`; STAGED_OUT is stored as JOB_FINISHED; a job that ends
in JOB_FINISHED releases its waiting children. A deleted parent counts as finished for release.

Locking: every statement that locks job rows orders them by id, and job rows are always locked before
transfer items, so overlapping bulk writers queue up instead of deadlocking.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Select, text
from sqlalchemy.orm import Session

from balsam.server.db.tables import Job
from balsam.server.schemas.jobs import JobState

S = JobState


@dataclass
class StateChange:
    """One stored state change: becomes an event row, and may trigger side effects."""

    job_id: int
    from_state: str
    to_state: str
    timestamp: datetime
    data: dict[str, Any] = field(default_factory=dict)


def transfer_status(db: Session, job_ids: Sequence[int]) -> dict[tuple[int, str], bool]:
    """{(job_id, direction): every item done} for the jobs' transfer items (no entry: no items)."""
    if not job_ids:
        return {}
    rows = db.execute(
        text(
            "SELECT job_id, direction, bool_and(state = 'done') FROM transfer_items"
            " WHERE job_id = ANY(:ids) GROUP BY job_id, direction"
        ),
        {"ids": list(job_ids)},
    )
    return {(r[0], r[1]): bool(r[2]) for r in rows}


def resolve_state(
    job_id: int, requested: str, status: dict[tuple[int, str], bool], data: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    """The state actually stored for a requested one (§5.5 swaps), and the event data."""
    if requested == S.READY and status.get((job_id, "in"), True):
        return S.STAGED_IN, {**data, "message": "Skipped stage in"}
    if requested == S.POSTPROCESSED and status.get((job_id, "out"), True):
        return S.JOB_FINISHED, {**data, "message": "Skipped stage out"}
    if requested == S.STAGED_OUT:
        return S.JOB_FINISHED, data
    return requested, data


def insert_events(db: Session, changes: Sequence[StateChange]) -> list[dict[str, Any]]:
    """One INSERT for all events; returns LogEventOut dicts (for pub/sub)."""
    if not changes:
        return []
    # One JSON document rather than five arrays: PostgreSQL parses one literal instead of 5n array elements.
    stamps = [c.timestamp.isoformat() for c in changes]
    document = json.dumps(
        [[c.job_id, ts, str(c.from_state), str(c.to_state), c.data] for c, ts in zip(changes, stamps, strict=True)]
    )
    ids = db.execute(
        text(
            "INSERT INTO log_events (job_id, timestamp, from_state, to_state, data)"
            " SELECT CAST(e->>0 AS bigint), CAST(e->>1 AS timestamp), e->>2, e->>3, e->4"
            " FROM jsonb_array_elements(CAST(:events AS jsonb)) WITH ORDINALITY AS t(e, n) ORDER BY n"
            " RETURNING id"
        ),
        {"events": document},
    ).scalars()
    # Rows come back in insertion order, which is the unnest order; ids only, the rest is known here.
    return [
        {
            "id": event_id,
            "job_id": c.job_id,
            "timestamp": ts,
            "from_state": str(c.from_state),
            "to_state": str(c.to_state),
            "data": c.data,
        }
        for event_id, c, ts in zip(sorted(ids), changes, stamps, strict=True)
    ]


def release_leases(db: Session, job_ids: Sequence[int]) -> None:
    """End the leases on these jobs (their rows already locked by the caller, who is changing their state)."""
    if job_ids:
        db.execute(text("DELETE FROM job_leases WHERE job_id = ANY(:ids)"), {"ids": sorted(job_ids)})


def store_states(db: Session, changes: Sequence[StateChange], now: datetime) -> None:
    """Write server-decided states (rows already locked): state, last_update, and the end of the lease of a
    job whose new state is not RUNNING."""
    if not changes:
        return
    db.execute(
        text(
            "UPDATE jobs SET state = u.state, last_update = :now"
            " FROM unnest(CAST(:ids AS bigint[]), CAST(:states AS text[])) AS u(id, state)"
            " WHERE jobs.id = u.id"
        ),
        {"ids": [c.job_id for c in changes], "states": [str(c.to_state) for c in changes], "now": now},
    )
    release_leases(db, [c.job_id for c in changes if c.to_state != S.RUNNING])


def lock_jobs(db: Session, job_ids: Iterable[int]) -> dict[int, str]:
    """Lock the given jobs in id order; {id: state} of those that exist."""
    ids = sorted(set(job_ids))
    if not ids:
        return {}
    rows = db.execute(
        text("SELECT id, state FROM jobs WHERE id = ANY(:ids) ORDER BY id FOR UPDATE"),
        {"ids": ids},
    )
    return {r[0]: r[1] for r in rows}


def lock_selected_jobs(db: Session, ids_query: Select[tuple[int]]) -> list[int]:
    """Lock the jobs selected by `ids_query` in id order (the order every job-locking statement uses) and
    return their ids; used before a cascade delete so it cannot deadlock with bulk updates."""
    locked = ids_query.order_by(Job.id).with_for_update(of=Job)
    return [row[0] for row in db.execute(locked)]


def release_children(db: Session, parent_ids: Sequence[int], now: datetime) -> list[dict[str, Any]]:
    """Move AWAITING_PARENTS children of `parent_ids` whose parents are all finished (or deleted).

    Returns the event dicts written. Does not cascade: released children are not finished.
    """
    if not parent_ids:
        return []
    candidates = [
        r[0]
        for r in db.execute(
            text(
                "SELECT id FROM jobs WHERE parent_ids && CAST(:ids AS bigint[]) AND state = 'AWAITING_PARENTS'"
                " ORDER BY id FOR UPDATE"
            ),
            {"ids": list(parent_ids)},
        )
    ]
    if not candidates:
        return []
    ready = [
        r[0]
        for r in db.execute(
            text(
                "SELECT c.id FROM jobs c WHERE c.id = ANY(:ids) AND NOT EXISTS ("
                " SELECT 1 FROM jobs p WHERE p.id = ANY(c.parent_ids) AND p.state <> 'JOB_FINISHED')"
                " ORDER BY c.id"
            ),
            {"ids": candidates},
        )
    ]
    status = transfer_status(db, ready)
    changes: list[StateChange] = []
    for job_id in ready:
        if status.get((job_id, "in"), True):
            changes.append(StateChange(job_id, S.AWAITING_PARENTS, S.STAGED_IN, now, {"message": "Skipped stage in"}))
        else:
            changes.append(StateChange(job_id, S.AWAITING_PARENTS, S.READY, now, {"message": "All parents finished"}))
    store_states(db, changes, now)
    return insert_events(db, changes)


def advance_after_transfers(db: Session, job_ids: Iterable[int], now: datetime) -> list[dict[str, Any]]:
    """After transfer items changed: READY jobs with every `in` item done become STAGED_IN, POSTPROCESSED
    jobs with every `out` item done become JOB_FINISHED (clearing the session lock and releasing children).

    The caller must already hold the job row locks (taken before the transfer item locks).
    """
    states = lock_jobs(db, job_ids)
    waiting = [j for j, s in states.items() if s in (S.READY, S.POSTPROCESSED)]
    status = transfer_status(db, waiting)
    changes: list[StateChange] = []
    for job_id in waiting:
        if states[job_id] == S.READY and status.get((job_id, "in"), True):
            changes.append(StateChange(job_id, S.READY, S.STAGED_IN, now))
        elif states[job_id] == S.POSTPROCESSED and status.get((job_id, "out"), True):
            changes.append(StateChange(job_id, S.POSTPROCESSED, S.JOB_FINISHED, now))
    store_states(db, changes, now)
    events = insert_events(db, changes)
    finished = [c.job_id for c in changes if c.to_state == S.JOB_FINISHED]
    return events + release_children(db, finished, now)


def apply_server_changes(db: Session, changes: Sequence[StateChange], now: datetime) -> list[dict[str, Any]]:
    """Store server-decided state changes on locked rows (e.g. session expiry RUNNING→RUN_TIMEOUT):
    state, session lock, events, and child release for JOB_FINISHED. Returns the event dicts."""
    store_states(db, changes, now)
    events = insert_events(db, changes)
    finished = [c.job_id for c in changes if c.to_state == S.JOB_FINISHED]
    return events + release_children(db, finished, now)
