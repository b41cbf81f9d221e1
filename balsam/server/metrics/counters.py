"""The metrics the service updates as things happen. Importing this module defines them (once per process).

Under gunicorn, `PROMETHEUS_MULTIPROC_DIR` is set before the workers import anything, so prometheus-client keeps
each value in a per-process file and a scrape adds them up; gauges use "livesum" (live workers only).
"""

from __future__ import annotations

from typing import Any

from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy import event
from sqlalchemy.pool import Pool

# Request latency buckets in seconds: sub-millisecond reads to bulk writes of 5,000 jobs.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

HTTP_REQUESTS = Counter(
    "balsam_http_requests",
    "HTTP requests answered, per route template and status class.",
    ["method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "balsam_http_request_duration_seconds",
    "Time from receiving a request to the end of its response, per route template and status class.",
    ["method", "route", "status"],
    buckets=LATENCY_BUCKETS,
)
JOBS_ACQUIRED = Counter("balsam_jobs_acquired", "Jobs handed to launcher sessions by acquire (POST /sessions/{id}).")
SESSIONS_EXPIRED = Counter(
    "balsam_sessions_expired", "Sessions expired by the server's sweeper (no heartbeat, or their batch job finished)."
)
EVENTS_PUBLISHED = Counter("balsam_events_published", "Messages published to Redis for /subscribe-user.")
PUBLISH_FAILURES = Counter(
    "balsam_event_publish_failures",
    "Messages not published: `error` when Redis failed, `suspended` when skipped during the pause after a failure.",
    ["reason"],
)
POOL_IN_USE = Gauge(
    "balsam_db_pool_connections_in_use",
    "Database connections checked out of the workers' pools (summed over live workers).",
    multiprocess_mode="livesum",
)


def _checked_out(*_: Any) -> None:
    POOL_IN_USE.inc()


def _checked_in(*_: Any) -> None:
    POOL_IN_USE.dec()


# On the Pool class, so every engine of the process counts (they are created after this import).
if not event.contains(Pool, "checkout", _checked_out):
    event.listen(Pool, "checkout", _checked_out)
    event.listen(Pool, "checkin", _checked_in)
