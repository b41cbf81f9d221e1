"""Server time of the dashboard's pages on an account with 100,000 jobs and 1,000,000 events (not run by CI).

    .venv/bin/python bench/bench_dashboard.py [--jobs 100000] [--events 1000000] [--requests 20]

Same set-up as the other benchmarks (private PostgreSQL unless BALSAM_DATABASE_URL is set, gunicorn with the
example config, 2 workers, no Redis). One user gets two sites (one stale), three apps, a session, two active
batch jobs, then `--jobs` jobs and `--events` events inserted with set-based `INSERT ... SELECT
generate_series` (events spread evenly over the last 8 days, one in ten reaching JOB_FINISHED and two in ten
a failure state), and a second user with a tenth as much, so the ownership joins have rows to skip. Then
VACUUM ANALYZE (what autovacuum does eventually).

It signs in through the dashboard's form and requests each page `--requests` times (after one warm-up
request per worker), reporting the median and the slowest of the server's own time (`Server-Timing:
app;dur=`, from receiving the request to starting the response) and the client's wall time. It also times
each throughput chart's query alone in-process (one query per chart) and prints the week chart's plan.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import bench_server, machine_line

from balsam.server.clock import utcnow
from balsam.server.crud import events as event_queries
from balsam.server.dashboard import charts
from balsam.server.db.session import BalsamSession

JOB_STATES = ["JOB_FINISHED"] * 6 + ["RUNNING", "STAGED_IN", "PREPROCESSED", "FAILED", "RUN_ERROR", "READY"]
# Event i of a job (i = 0..9) moves it to EVENT_STATES[i]: one JOB_FINISHED, two failures in ten.
EVENT_STATES = [
    "STAGED_IN",
    "PREPROCESSED",
    "RUNNING",
    "RUN_DONE",
    "POSTPROCESSED",
    "JOB_FINISHED",
    "RESTART_READY",
    "RUNNING",
    "RUN_ERROR",
    "FAILED",
]
EVENT_SPAN_SECONDS = 8 * 24 * 3600
PAGES = ["/dashboard/", "/dashboard/live/overview", "/dashboard/throughput", "/dashboard/failures"]
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def populate(url: str, app_ids: list[int], n_jobs: int, n_events: int) -> None:
    """`n_jobs` jobs over `app_ids` and `n_events` events over those jobs, each one statement."""
    engine = create_engine(url)
    with engine.begin() as conn:
        first = conn.execute(
            text(
                "INSERT INTO jobs (app_id, workdir, state, tags, serialized_parameters, data) "
                "SELECT (CAST(:apps AS int[]))[1 + i % :n_apps], 'bench/' || i, "
                "(CAST(:states AS text[]))[1 + i % :n_states], "
                "jsonb_build_object('batch', (i % 50)::text), repeat('p', 200), jsonb_build_object('i', i) "
                "FROM generate_series(0, :n - 1) AS i RETURNING id"
            ),
            {"apps": app_ids, "n_apps": len(app_ids), "states": JOB_STATES, "n_states": len(JOB_STATES), "n": n_jobs},
        ).scalars()
        ids = sorted(first)
        low, high = ids[0], ids[-1]
        # Event e is event e % 10 of job low + (e / 10) % n_jobs (a job's events are moments apart); the
        # timestamps step evenly over the last EVENT_SPAN_SECONDS, so every state occurs in every hour.
        conn.execute(
            text(
                "INSERT INTO log_events (job_id, timestamp, from_state, to_state, data) "
                "SELECT :low + (e / :n_states) % :n_jobs, "
                "(now() AT TIME ZONE 'utc') - ((:n_events - 1 - e)::float8 * :span / :n_events) * interval '1 second', "
                "'RUNNING', (CAST(:states AS text[]))[1 + e % :n_states], "
                "CASE WHEN e % :n_states >= 8 THEN jsonb_build_object('message', 'exit ' || e % 7) "
                "ELSE '{}'::jsonb END "
                "FROM generate_series(0, :n_events - 1) AS e"
            ),
            {
                "low": low,
                "n_jobs": high - low + 1,
                "span": EVENT_SPAN_SECONDS,
                "n_events": n_events,
                "states": EVENT_STATES,
                "n_states": len(EVENT_STATES),
            },
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in ("jobs", "log_events", "apps", "sites"):
            conn.execute(text(f"VACUUM ANALYZE {table}"))
    engine.dispose()


def make_account(http: httpx.Client, prefix: str) -> tuple[str, str, list[int], int]:
    """A user with two sites (the second stale once back-dated) and three apps; returns its credentials,
    app ids and the stale site's id."""
    name, password = f"{prefix}-{uuid.uuid4().hex[:6]}", "pw"
    http.post("/auth/password/register", json={"username": name, "password": password}).raise_for_status()
    token = http.post("/auth/password/login", data={"username": name, "password": password}).json()["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    sites = [
        http.post("/sites/", json={"name": f"{prefix}-{n}", "path": f"/{n}"}, headers=auth).json()["id"]
        for n in ("polaris", "theta")
    ]
    apps = []
    for site_id, app in ((sites[0], "sim"), (sites[0], "analysis"), (sites[1], "legacy")):
        body = {"site_id": site_id, "name": app, "serialized_class": "c", "source_code": "s"}
        apps.append(http.post("/apps/", json=body, headers=auth).json()["id"])
    for queue in ("prod", "debug"):
        body = {"site_id": sites[0], "project": "p", "queue": queue, "num_nodes": 4, "wall_time_min": 60}
        batch = http.post("/batch-jobs/", json={**body, "job_mode": "mpi"}, headers=auth).json()["id"]
        http.put(f"/batch-jobs/{batch}", json={"state": "queued", "status_info": {"q": queue}}, headers=auth)
    http.post("/sessions/", json={"site_id": sites[0]}, headers=auth).raise_for_status()
    return name, password, apps, sites[1]


def sign_in(base_url: str, name: str, password: str) -> httpx.Client:
    web = httpx.Client(base_url=base_url, timeout=300, follow_redirects=True)
    form = web.get("/dashboard/login")
    match = CSRF.search(form.text)
    assert match is not None
    resp = web.post("/dashboard/login", data={"csrf_token": match.group(1), "username": name, "password": password})
    resp.raise_for_status()
    assert "Sign out" in resp.text, "sign-in failed"
    return web


def server_ms(resp: httpx.Response) -> float:
    match = re.search(r"app;dur=([\d.]+)", resp.headers.get("server-timing", ""))
    assert match is not None, resp.headers
    return float(match.group(1))


def time_page(web: httpx.Client, path: str, requests: int) -> tuple[float, float, float]:
    for _ in range(2):  # one warm-up per worker (templates compiled, connections open)
        web.get(path).raise_for_status()
    server, wall = [], []
    for _ in range(requests):
        started = time.perf_counter()
        resp = web.get(path)
        wall.append((time.perf_counter() - started) * 1000)
        resp.raise_for_status()
        server.append(server_ms(resp))
    return statistics.median(server), max(server), statistics.median(wall)


def chart_queries(url: str, owner_id: int, runs: int) -> None:
    engine = create_engine(url, connect_args={"options": "-c timezone=UTC"})
    with BalsamSession(engine) as db:
        for window in charts.WINDOWS.values():
            times = []
            now = utcnow()
            start, end = charts.window_bounds(window, now)
            for _ in range(runs):
                started = time.perf_counter()
                rows = event_queries.per_interval(db, owner_id, charts.SERIES, start, end, window.interval)
                times.append((time.perf_counter() - started) * 1000)
            counted = sum(row.finished + row.failed for row in rows)
            print(f"chart query, {window.title.lower()}: median {statistics.median(times):.1f} ms ({counted:,} events)")
        week = charts.WINDOWS["week"]
        start, end = charts.window_bounds(week, utcnow())
        from sqlalchemy.dialects import postgresql

        query = event_queries.filtered(
            owner_id,
            event_queries.EventFilters(
                timestamp_after=start,
                timestamp_before=end,
                to_states=sorted({s for group in charts.SERIES.values() for s in group}),
            ),
        )
        compiled = query.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
        plan = db.execute(text(f"EXPLAIN (ANALYZE, BUFFERS, TIMING OFF) SELECT count(*) FROM ({compiled}) AS q"))
        print("plan of the week chart's event selection:\n" + "\n".join(row[0] for row in plan))
        db.rollback()
    engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=20)
    args = parser.parse_args()
    print(machine_line())
    with bench_server(2) as bench:
        name, password, apps, stale_site = make_account(bench.http, "sci")
        _, _, other_apps, _ = make_account(bench.http, "other")
        started = time.perf_counter()
        populate(bench.database_url, apps, args.jobs, args.events)
        populate(bench.database_url, other_apps, args.jobs // 10, args.events // 10)
        engine = create_engine(bench.database_url)
        with engine.begin() as conn:
            conn.execute(
                text("UPDATE sites SET last_refresh = :t WHERE id = :id"),
                {"t": utcnow() - timedelta(hours=3), "id": stale_site},
            )
            owner_id = conn.execute(text("SELECT id FROM users WHERE username = :n"), {"n": name}).scalar_one()
            sizes = conn.execute(
                text(
                    "SELECT pg_size_pretty(pg_total_relation_size('jobs')), "
                    "pg_size_pretty(pg_total_relation_size('log_events'))"
                )
            ).one()
        engine.dispose()
        print(
            f"{args.jobs:,} jobs and {args.events:,} events (plus a second user with a tenth) inserted in "
            f"{time.perf_counter() - started:.1f} s; jobs {sizes[0]}, log_events {sizes[1]} with indexes"
        )
        web = sign_in(bench.base_url, name, password)
        job_id = int(re.findall(r'data-job-id="(\d+)"', web.get("/dashboard/jobs").text)[0])
        pages = [
            *PAGES,
            "/dashboard/jobs",
            "/dashboard/jobs?state=RUN_ERROR&tags=batch:7",
            "/dashboard/jobs?offset=50000",
            f"/dashboard/jobs/{job_id}",
        ]
        print(f"{'page':<48} {'server median':>14} {'server max':>11} {'wall median':>12}")
        for path in pages:
            median, slowest, wall = time_page(web, path, args.requests)
            print(f"{path:<48} {median:>11.1f} ms {slowest:>8.1f} ms {wall:>9.1f} ms")
        web.close()
        chart_queries(bench.database_url, owner_id, args.requests)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
