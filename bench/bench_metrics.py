"""What a Prometheus scrape of /metrics costs on a database of 100,000 jobs (not run by CI).

    .venv/bin/python bench/bench_metrics.py [--jobs 100000] [--sites 20] [--scrapes 30]

Same set-up as the other benchmarks (private PostgreSQL unless BALSAM_DATABASE_URL is set, gunicorn with the
example config, 2 workers), with `BALSAM_METRICS_ENABLED=true` and `BALSAM_METRICS_CACHE_SECONDS=0`, so every
scrape runs the aggregate query. Inserts `--jobs` jobs (about 1 KiB each: parameters, tags, data) spread over
`--sites` sites with two apps each and a realistic mix of states, then VACUUM ANALYZE (what autovacuum does
eventually). Measures, as medians over `--scrapes` runs:

1. the aggregate query alone (balsam.server.metrics.database), with the schema's indexes, its plan and buffers;
2. the same query with the plain `(app_id, state)` index dropped, for comparison (then restored);
3. a whole scrape over HTTP (cold: the query runs each time), and its size;
4. a scrape answered from the cache (a second server with BALSAM_METRICS_CACHE_SECONDS=60).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import bench_server, machine_line

from balsam.server.clock import utcnow
from balsam.server.metrics.database import _COUNTS, read_snapshot

STATES = ["JOB_FINISHED"] * 6 + ["RUNNING", "STAGED_IN", "PREPROCESSED", "FAILED", "READY", "AWAITING_PARENTS"]


def populate(url: str, app_ids: list[int], n_jobs: int) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO jobs (app_id, workdir, state, tags, serialized_parameters, data) "
                "SELECT (CAST(:apps AS int[]))[1 + i % :n_apps], 'bench/' || i, (CAST(:states AS text[]))[1 + i % :n_states], "
                "jsonb_build_object('batch', (i % 50)::text), repeat('p', 800), jsonb_build_object('i', i) "
                "FROM generate_series(1, :n) AS i"
            ),
            {"apps": app_ids, "n_apps": len(app_ids), "states": STATES, "n_states": len(STATES), "n": n_jobs},
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE jobs"))
        conn.execute(text("VACUUM ANALYZE apps"))
        conn.execute(text("VACUUM ANALYZE sites"))
    engine.dispose()


def query_ms(url: str, runs: int) -> tuple[float, str]:
    engine = create_engine(url, connect_args={"options": "-c timezone=UTC"})
    times = []
    with Session(engine) as db:
        for _ in range(runs):
            started = time.perf_counter()
            read_snapshot(db, 300)
            times.append((time.perf_counter() - started) * 1000)
        plan = "\n".join(
            row[0]
            for row in db.execute(
                text("EXPLAIN (ANALYZE, BUFFERS, TIMING OFF) " + str(_COUNTS)),
                {"alive_after": utcnow() - timedelta(seconds=300)},
            )
        )
        db.rollback()
    engine.dispose()
    return statistics.median(times), plan


def scrape_ms(http: httpx.Client, runs: int) -> tuple[float, int]:
    times, size = [], 0
    for _ in range(runs):
        started = time.perf_counter()
        resp = http.get("/metrics")
        times.append((time.perf_counter() - started) * 1000)
        resp.raise_for_status()
        size = len(resp.content)
    return statistics.median(times), size


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--sites", type=int, default=20)
    parser.add_argument("--scrapes", type=int, default=30)
    args = parser.parse_args()
    print(machine_line())
    env = {"BALSAM_METRICS_ENABLED": "true", "BALSAM_METRICS_CACHE_SECONDS": "0"}
    with bench_server(2, env) as bench:
        http = bench.http
        app_ids = [bench.app["id"]]
        for s in range(args.sites):
            site_id = (
                bench.site["id"]
                if s == 0
                else http.post("/sites/", json={"name": f"s{s}", "path": f"/s{s}"}).json()["id"]
            )
            for a in range(2 if s else 1):
                body = {"site_id": site_id, "name": f"app{a}", "serialized_class": "c", "source_code": "s"}
                app_ids.append(http.post("/apps/", json=body).json()["id"])
        started = time.perf_counter()
        populate(bench.database_url, app_ids, args.jobs)
        print(
            f"{args.jobs:,} jobs over {args.sites} sites / {len(app_ids)} apps inserted in {time.perf_counter() - started:.1f} s"
        )
        engine = create_engine(bench.database_url)
        with engine.connect() as conn:
            size = conn.execute(text("SELECT pg_size_pretty(pg_total_relation_size('jobs'))")).scalar()
        print(f"jobs table with indexes: {size}")

        indexed, plan = query_ms(bench.database_url, args.scrapes)
        print(f"aggregate query, schema indexes: median {indexed:.1f} ms\n{plan}\n")
        with engine.begin() as conn:
            # The plain btree index on (app_id, state), whatever the schema calls it.
            name, definition = conn.execute(
                text(
                    "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'jobs' "
                    "AND indexdef LIKE '%(app_id, state)' ORDER BY indexname LIMIT 1"
                )
            ).one()
            conn.execute(text(f'DROP INDEX "{name}"'))
        unindexed, plan_without = query_ms(bench.database_url, args.scrapes)
        print(f"aggregate query without {name}: median {unindexed:.1f} ms\n{plan_without}\n")
        with engine.begin() as conn:
            conn.execute(text(definition))
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE jobs"))
        engine.dispose()

        http.get("/metrics").raise_for_status()  # both workers' first scrape builds their registries
        cold, size_bytes = scrape_ms(http, args.scrapes)
        print(f"scrape over HTTP, query each time: median {cold:.1f} ms, {size_bytes:,} bytes")
    with bench_server(2, {**env, "BALSAM_METRICS_CACHE_SECONDS": "60"}) as cached:
        cached.http.get("/metrics").raise_for_status()
        cached.http.get("/metrics").raise_for_status()
        warm, _ = scrape_ms(cached.http, args.scrapes)
        print(f"scrape over HTTP, counts from the cache (empty database): median {warm:.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
