"""Gauges read from the database when Prometheus scrapes: jobs per state per site and active sessions.

One statement per scrape at most: the job counts come from a GROUP BY over `jobs(app_id, state)` (an index-only
scan where the visibility map allows), joined to the few rows of `apps` and `sites` afterwards. Each worker
keeps the result for `metrics_cache_seconds`, and concurrent scrapes of one worker share one query. A failing
query does not fail the scrape: `balsam_metrics_database_up` drops to 0 and the other metrics are served.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta

from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from balsam.server.clock import utcnow

logger = logging.getLogger(__name__)

# Aggregate per app first (the index holds app_id and state), then map apps to sites: the join sees one row
# per (app, state), not one per job.
_COUNTS = text(
    """
    SELECT s.id AS site_id, s.name AS site_name, c.state, sum(c.n)::bigint AS n
    FROM (SELECT app_id, state, count(*) AS n FROM jobs GROUP BY app_id, state) AS c
    JOIN apps AS a ON a.id = c.app_id
    JOIN sites AS s ON s.id = a.site_id
    GROUP BY s.id, s.name, c.state
    UNION ALL
    SELECT NULL, NULL, 'sessions', count(*) FROM sessions WHERE heartbeat > :alive_after
    """
)
_STATEMENT_TIMEOUT_MS = 10_000


@dataclass
class Snapshot:
    jobs: list[tuple[int, str, str, int]] = field(default_factory=list)  # (site id, site name, state, count)
    sessions: int = 0
    ok: bool = False
    seconds: float = 0.0  # how long the query took


def read_snapshot(db: Session, session_expiry_seconds: float) -> Snapshot:
    started = time.perf_counter()
    with db.begin():
        db.execute(text(f"SET LOCAL statement_timeout = {_STATEMENT_TIMEOUT_MS}"))
        rows = db.execute(_COUNTS, {"alive_after": utcnow() - timedelta(seconds=session_expiry_seconds)}).all()
    snap = Snapshot(ok=True)
    for site_id, site_name, state, count in rows:
        if site_id is None:
            snap.sessions = int(count)
        else:
            snap.jobs.append((int(site_id), str(site_name), str(state), int(count)))
    snap.seconds = time.perf_counter() - started
    return snap


class DatabaseCollector(Collector):
    """A prometheus-client collector that reads a cached `Snapshot`."""

    def __init__(
        self, session_factory: Callable[[], Session], *, cache_seconds: float, session_expiry_seconds: float
    ) -> None:
        self._session_factory = session_factory
        self.cache_seconds = cache_seconds
        self.session_expiry_seconds = session_expiry_seconds
        self._snapshot: Snapshot | None = None
        self._read_at = 0.0
        self._lock = threading.Lock()
        self.queries = 0  # statements run (for tests and debugging)

    def snapshot(self) -> Snapshot:
        with self._lock:  # one query at a time; scrapes arriving meanwhile reuse its result
            fresh = self._snapshot is not None and time.monotonic() - self._read_at < self.cache_seconds
            if not fresh:
                self._snapshot = self._read()
                self._read_at = time.monotonic()
            assert self._snapshot is not None
            return self._snapshot

    def _read(self) -> Snapshot:
        self.queries += 1
        try:
            with self._session_factory() as db:
                return read_snapshot(db, self.session_expiry_seconds)
        except SQLAlchemyError as exc:
            logger.warning("Metrics: the job and session counts could not be read: %s", str(exc).splitlines()[0])
            return Snapshot(ok=False)

    def collect(self) -> Iterator[Metric]:
        snap = self.snapshot()
        up = GaugeMetricFamily("balsam_metrics_database_up", "1 when the last read of the database gauges worked.")
        up.add_metric([], 1.0 if snap.ok else 0.0)
        yield up
        took = GaugeMetricFamily(
            "balsam_metrics_database_query_seconds", "Time the last read of the database gauges took."
        )
        took.add_metric([], snap.seconds)
        yield took
        if not snap.ok:
            return
        jobs = GaugeMetricFamily("balsam_jobs", "Jobs per site and state.", labels=["site_id", "site", "state"])
        for site_id, site_name, state, count in snap.jobs:
            jobs.add_metric([str(site_id), site_name, state], float(count))
        yield jobs
        sessions = GaugeMetricFamily(
            "balsam_sessions_active", "Launcher sessions with a heartbeat within BALSAM_SESSION_EXPIRY_SECONDS."
        )
        sessions.add_metric([], float(snap.sessions))
        yield sessions
