"""Server-side lease expiry (spec §8 "Heartbeat and expiry", §12.16).

Every worker process runs a `SessionSweeper` task (started by the app's lifespan). Each round, in its own
transaction, it takes a PostgreSQL advisory lock with `pg_try_advisory_xact_lock`, so only one process in
the whole deployment sweeps at a time, and the others skip the round. It expires the sessions whose
heartbeat is older than `session_expiry_seconds` or whose batch job is `finished`, through the same code
path as `DELETE /sessions/{id}` (`balsam.server.crud.sessions.expire_sessions`), and publishes the
resulting RUN_TIMEOUT events after the commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session as DbSession

from balsam.server.crud.sessions import ExpiryResult, expire_sessions, expired_condition, utcnow
from balsam.server.db.tables import BatchJob, Session
from balsam.server.metrics.counters import SESSIONS_EXPIRED
from balsam.server.pubsub import Publisher, publish_events

logger = logging.getLogger(__name__)

# Arbitrary but fixed: "balsam" + 1, as a signed 64-bit key for pg_try_advisory_xact_lock.
SWEEP_LOCK_KEY = 0x62616C73616D01
BATCH_SIZE = 500


def sweep_expired(
    session_factory: Callable[[], DbSession],
    *,
    expiry_seconds: float,
    now: datetime | None = None,
    batch_size: int = BATCH_SIZE,
) -> ExpiryResult | None:
    """Expire every stale session; one transaction per batch. None when another process holds the lock."""
    total = ExpiryResult()
    while True:
        with session_factory() as db, db.begin():
            if not db.scalar(select(func.pg_try_advisory_xact_lock(SWEEP_LOCK_KEY))):
                return None if not total.session_ids else total
            when = now or utcnow()
            # SKIP LOCKED: a session busy in an acquire or a DELETE is left for that request or the next round.
            ids = list(
                db.scalars(
                    select(Session.id)
                    .outerjoin(BatchJob, Session.batch_job_id == BatchJob.id)
                    .where(expired_condition(when, expiry_seconds))
                    .order_by(Session.id)
                    .limit(batch_size)
                    .with_for_update(of=Session, skip_locked=True)
                )
            )
            total.merge(expire_sessions(db, ids, when))
        if len(ids) < batch_size:
            return total


def publish_expiry(publisher: Publisher, result: ExpiryResult) -> None:
    """After the commit: the RUN_TIMEOUT events, one message per affected user (grouped by site owner)."""
    for owner_id, events in result.events_by_owner.items():
        publish_events(publisher, owner_id, events)


class SessionSweeper:
    """Runs `sweep_expired` every `interval` seconds (with jitter) in a thread, until stopped."""

    def __init__(
        self,
        session_factory: Callable[[], DbSession],
        publisher: Callable[[], Publisher],
        *,
        expiry_seconds: float,
        interval: float,
    ) -> None:
        self._session_factory = session_factory
        self._publisher = publisher
        self.expiry_seconds = expiry_seconds
        self.interval = interval
        self._task: asyncio.Task[None] | None = None
        self._failing = False

    def sweep_once(self) -> ExpiryResult | None:
        result = sweep_expired(self._session_factory, expiry_seconds=self.expiry_seconds)
        if result is not None and result.session_ids:
            SESSIONS_EXPIRED.inc(len(result.session_ids))
            logger.info(
                "Expired %d session(s); %d RUNNING job(s) timed out", len(result.session_ids), result.event_count
            )
            publish_expiry(self._publisher(), result)
        return result

    async def _run(self) -> None:
        # Workers start together; a random phase spreads their attempts over the interval.
        await asyncio.sleep(random.uniform(0, self.interval))
        while True:
            try:
                await asyncio.to_thread(self.sweep_once)
                if self._failing:
                    logger.info("Session sweep works again")
                self._failing = False
            except Exception as exc:
                if not self._failing:
                    logger.warning("Session sweep failed; retrying every %ss: %s", self.interval, exc)
                self._failing = True
            await asyncio.sleep(self.interval * random.uniform(0.9, 1.1))

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="balsam-session-sweeper")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
