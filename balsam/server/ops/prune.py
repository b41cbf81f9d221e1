"""Retention: delete old job events and, optionally, old finished (or failed) jobs with their events and transfer
items, in short batches that stay out of the API's way (`balsam server prune`).

- Each batch is one short transaction. Candidates are read in (timestamp, id) order with a keyset, so each row is
  looked at once; then the batch locks its rows in id order with FOR UPDATE SKIP LOCKED: a row that a request is
  using is left alone (for the next run) and the prune never waits on the API, so it cannot deadlock with it.
- A job is a candidate when its state is one of the chosen terminal states and its `last_update` (the time of its
  last change) is older than the cut-off. A job that is still a parent of a job in AWAITING_PARENTS is kept,
  whatever its state: child release counts a missing parent as finished (docs/job-states.md), so deleting a
  failed parent would release its children. Children of pruned parents keep the parent's id in `parent_ids`.
- Only one prune runs at a time in a database: a second one reports that and exits. The lock is transaction-level,
  held by a transaction left open on a connection of its own for the whole prune, so it also holds through
  PgBouncer in transaction mode (an open transaction keeps its server connection; a session-level lock would
  stay behind on whichever server connection PgBouncer happened to use).
- Nothing is published to /subscribe-user: this is housekeeping, not a user's change.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, Connection, Engine, bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY

from balsam.server.auth.throttle import purge_expired
from balsam.server.clock import utcnow

PRUNE_LOCK_KEY = 0x62616C73616D02  # "balsam" + 2; the session sweeper uses + 1
PRUNABLE_STATES = ("JOB_FINISHED", "FAILED")
AWAITING_PARENTS = "AWAITING_PARENTS"


@dataclass(frozen=True)
class Plan:
    events_before: datetime | None  # delete log events older than this
    jobs_before: datetime | None  # delete jobs in `job_states` last changed before this
    job_states: tuple[str, ...] = ("JOB_FINISHED",)
    batch_size: int = 1000  # events per transaction; jobs per transaction: a tenth of it (each has ~10 events)

    @classmethod
    def from_days(
        cls,
        events_days: float | None,
        jobs_days: float | None,
        job_states: Sequence[str],
        batch_size: int,
        now: datetime,
    ) -> Plan:
        def cut(days: float | None) -> datetime | None:
            return None if days is None else now - timedelta(days=days)

        return cls(cut(events_days), cut(jobs_days), tuple(job_states), batch_size)

    @property
    def job_batch(self) -> int:
        return max(1, self.batch_size // 10)


@dataclass
class Counts:
    jobs: int = 0
    job_events: int = 0  # events that went with their jobs
    transfer_items: int = 0
    events: int = 0  # old events of jobs that stay
    kept_parents: int = 0  # candidate jobs kept because a child still awaits them (dry run only)
    throttle_counters: int = 0


def _ids(name: str, values: Sequence[int]) -> Any:
    return bindparam(name, list(values), type_=ARRAY(BigInteger))


# ----------------------------------------------------------------------------------------------- dry run

_JOB_MATCH = "j.state = ANY(:states) AND j.last_update < :jobs_before"
_WAITING_CHILD = (
    "EXISTS (SELECT 1 FROM jobs c WHERE c.parent_ids @> ARRAY[j.id]::bigint[] AND c.state = 'AWAITING_PARENTS')"
)


def count(engine: Engine, plan: Plan) -> Counts:
    """What `prune(plan)` would delete now (it may differ by the rows that change meanwhile)."""
    found = Counts()
    params: dict[str, Any] = {"states": list(plan.job_states), "jobs_before": plan.jobs_before}
    with engine.connect() as conn:
        if plan.jobs_before is not None:
            row = conn.execute(
                text(
                    f"""
                    WITH doomed AS (SELECT j.id FROM jobs j WHERE {_JOB_MATCH} AND NOT {_WAITING_CHILD})
                    SELECT (SELECT count(*) FROM doomed),
                           (SELECT count(*) FROM log_events e JOIN doomed d ON d.id = e.job_id),
                           (SELECT count(*) FROM transfer_items t JOIN doomed d ON d.id = t.job_id),
                           (SELECT count(*) FROM jobs j WHERE {_JOB_MATCH} AND {_WAITING_CHILD})
                    """
                ),
                params,
            ).one()
            found.jobs, found.job_events, found.transfer_items, found.kept_parents = (int(v) for v in row)
        if plan.events_before is not None:
            doomed_job = (
                f"EXISTS (SELECT 1 FROM jobs j WHERE j.id = e.job_id AND {_JOB_MATCH} AND NOT {_WAITING_CHILD})"
                if plan.jobs_before is not None
                else "false"
            )
            found.events = int(
                conn.execute(
                    text(f"SELECT count(*) FROM log_events e WHERE e.timestamp < :events_before AND NOT {doomed_job}"),
                    {**params, "events_before": plan.events_before},
                ).scalar_one()
            )
        conn.rollback()
    return found


# ----------------------------------------------------------------------------------------------- prune


class PruneBusy(RuntimeError):
    """Another prune holds the lock."""


@contextlib.contextmanager
def _exclusive(engine: Engine) -> Iterator[None]:
    # The transaction only holds the lock (it reads and writes nothing); ending it releases the lock.
    with engine.connect() as conn, conn.begin():
        if not conn.execute(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": PRUNE_LOCK_KEY}).scalar():
            raise PruneBusy("another `balsam server prune` is running on this database")
        yield


def prune(
    engine: Engine,
    plan: Plan,
    *,
    progress: Callable[[Counts], None] = lambda _: None,
    throttle_window: timedelta | None = None,
) -> Counts:
    """Delete what `plan` selects, batch by batch, calling `progress` after each batch. Raises PruneBusy."""
    done = Counts()
    with _exclusive(engine):
        if plan.jobs_before is not None:
            floor: tuple[datetime, int] | None = None
            while (floor := _job_batch(engine, plan, floor, done)) is not None:
                progress(done)
        if plan.events_before is not None:
            floor = None
            while (floor := _event_batch(engine, plan, floor, done)) is not None:
                progress(done)
        if throttle_window is not None:
            with engine.begin() as conn:
                done.throttle_counters = purge_expired(conn, utcnow(), throttle_window)
    return done


def _after(floor: tuple[datetime, int] | None, column: str) -> tuple[str, dict[str, Any]]:
    """A keyset condition: rows after `floor` in (column, id) order."""
    if floor is None:
        return "true", {}
    return f"{column} >= :floor_at AND ({column} > :floor_at OR id > :floor_id)", {
        "floor_at": floor[0],
        "floor_id": floor[1],
    }


def _job_batch(
    engine: Engine, plan: Plan, floor: tuple[datetime, int] | None, done: Counts
) -> tuple[datetime, int] | None:
    after, keyset = _after(floor, "last_update")
    states = list(plan.job_states)
    with engine.begin() as conn:
        candidates = conn.execute(
            text(
                f"SELECT id, last_update FROM jobs WHERE state = ANY(:states) AND last_update < :before AND {after} "
                "ORDER BY last_update, id LIMIT :n"
            ),
            {"states": states, "before": plan.jobs_before, "n": plan.job_batch, **keyset},
        ).all()
        if not candidates:
            return None
        # Lock in id order, skipping rows a request holds; the conditions are checked again on the locked rows.
        locked = set(
            conn.execute(
                text(
                    "SELECT id FROM jobs WHERE id = ANY(:ids) AND state = ANY(:states) AND last_update < :before "
                    "ORDER BY id FOR UPDATE SKIP LOCKED"
                ).bindparams(_ids("ids", [c.id for c in candidates])),
                {"states": states, "before": plan.jobs_before},
            ).scalars()
        )
        if locked:
            locked -= _awaited_parents(conn, locked)
        if locked:
            locked -= _jobs_with_busy_transfer_items(conn, locked)
        if locked:
            ids = sorted(locked)
            done.job_events += _delete_count(conn, "DELETE FROM log_events WHERE job_id = ANY(:ids)", ids)
            done.transfer_items += _delete_count(conn, "DELETE FROM transfer_items WHERE job_id = ANY(:ids)", ids)
            done.jobs += _delete_count(conn, "DELETE FROM jobs WHERE id = ANY(:ids)", ids)
    last = candidates[-1]
    return last.last_update, last.id


def _awaited_parents(conn: Connection, job_ids: set[int]) -> set[int]:
    rows = conn.execute(
        text(
            "SELECT DISTINCT p FROM jobs c, unnest(c.parent_ids) AS p "
            "WHERE c.parent_ids && :ids AND c.state = :waiting AND p = ANY(:ids)"
        ).bindparams(_ids("ids", sorted(job_ids))),
        {"waiting": AWAITING_PARENTS},
    ).scalars()
    return set(rows)


def _jobs_with_busy_transfer_items(conn: Connection, job_ids: set[int]) -> set[int]:
    """Jobs with a transfer item that a request holds: locking the items first (SKIP LOCKED) means the deletes
    below never wait for a request, which might itself be waiting for one of our job rows."""
    ids = _ids("ids", sorted(job_ids))
    every = set(conn.execute(text("SELECT id FROM transfer_items WHERE job_id = ANY(:ids)").bindparams(ids)).scalars())
    if not every:
        return set()
    got = set(
        conn.execute(
            text(
                "SELECT id FROM transfer_items WHERE job_id = ANY(:ids) ORDER BY id FOR UPDATE SKIP LOCKED"
            ).bindparams(ids)
        ).scalars()
    )
    busy = every - got
    if not busy:
        return set()
    return set(
        conn.execute(
            text("SELECT DISTINCT job_id FROM transfer_items WHERE id = ANY(:busy)").bindparams(
                _ids("busy", sorted(busy))
            )
        ).scalars()
    )


def _event_batch(
    engine: Engine, plan: Plan, floor: tuple[datetime, int] | None, done: Counts
) -> tuple[datetime, int] | None:
    after, keyset = _after(floor, "timestamp")
    with engine.begin() as conn:
        candidates = conn.execute(
            text(
                f"SELECT id, timestamp FROM log_events WHERE timestamp < :before AND {after} "
                "ORDER BY timestamp, id LIMIT :n"
            ),
            {"before": plan.events_before, "n": plan.batch_size, **keyset},
        ).all()
        if not candidates:
            return None
        done.events += _delete_count(
            conn,
            "DELETE FROM log_events WHERE id IN "
            "(SELECT id FROM log_events WHERE id = ANY(:ids) ORDER BY id FOR UPDATE SKIP LOCKED)",
            [c.id for c in candidates],
        )
    last = candidates[-1]
    return last.timestamp, last.id


def _delete_count(conn: Connection, sql: str, ids: Sequence[int]) -> int:
    return int(conn.execute(text(sql).bindparams(_ids("ids", ids))).rowcount)
