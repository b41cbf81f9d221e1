"""Acquire throughput against a real gunicorn over HTTP (not run by CI).

    .venv/bin/python bench/bench_acquire.py [--jobs 10000] [--chunk 1000] [--workers 2] [--repeat 5]

Same set-up as bench_jobs.py (private PostgreSQL unless BALSAM_DATABASE_URL is set, gunicorn with the
example config, access log off). Creates `--jobs` jobs once, then each round opens a session and acquires
them all with raw `POST /sessions/{id}` requests of `--chunk` jobs (one connection, sequential, like a
launcher), and deletes the session, which releases the jobs for the next round. Rounds alternate the serial
path (no `max_aggregate_nodes`) and the MPI path (footprint ordering + cumulative node cap). Prints jobs/s
per round and the median per path. Then `--clients` launchers (each its own session and connection) drain
the same jobs concurrently, in requests of `--chunk`.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import bench_server, machine_line


def create_jobs(http: httpx.Client, app_id: int, n_jobs: int) -> None:
    for start in range(0, n_jobs, 5000):
        body = [
            {
                "app_id": app_id,
                "workdir": f"acq/job{i}",
                "tags": {"bench": "acquire", "i": str(i % 10)},
                "serialized_parameters": "x" * 64,
                "num_nodes": 1 + i % 4,
                "node_packing_count": 1 + i % 2,
                "wall_time_min": i % 60,
            }
            for i in range(start, min(start + 5000, n_jobs))
        ]
        resp = http.post("/jobs/", content=json.dumps(body), headers={"content-type": "application/json"})
        resp.raise_for_status()


def acquire_parallel(clients: list[httpx.Client], site_id: int, n_jobs: int, chunk: int) -> float:
    """Several launchers at once, each with its own session and connection; returns wall seconds."""
    sessions = [c.post("/sessions/", json={"site_id": site_id}).json()["id"] for c in clients]
    payload = json.dumps({"max_num_jobs": chunk, "filter_tags": {"bench": "acquire"}, "states": ["STAGED_IN"]})
    counts = [0] * len(clients)

    def drain(k: int) -> None:
        while True:
            resp = clients[k].post(
                f"/sessions/{sessions[k]}", content=payload, headers={"content-type": "application/json"}
            )
            resp.raise_for_status()
            n = len(resp.json())
            if n == 0:
                return
            counts[k] += n

    start = time.perf_counter()
    with ThreadPoolExecutor(len(clients)) as pool:
        list(pool.map(drain, range(len(clients))))
    elapsed = time.perf_counter() - start
    assert sum(counts) == n_jobs, counts
    for c, sid in zip(clients, sessions, strict=True):
        c.delete(f"/sessions/{sid}").raise_for_status()
    return elapsed


def acquire_round(http: httpx.Client, site_id: int, n_jobs: int, chunk: int, mpi: bool) -> tuple[float, float]:
    """Returns (seconds acquiring, seconds including the client's JSON parse)."""
    session = http.post("/sessions/", json={"site_id": site_id}).json()["id"]
    body: dict[str, object] = {"max_num_jobs": chunk, "filter_tags": {"bench": "acquire"}, "states": ["STAGED_IN"]}
    if mpi:
        body["max_aggregate_nodes"] = 1e9  # the cap code runs, but never binds
    payload = json.dumps(body)
    got = 0
    parse = 0.0
    start = time.perf_counter()
    while got < n_jobs:
        resp = http.post(f"/sessions/{session}", content=payload, headers={"content-type": "application/json"})
        resp.raise_for_status()
        t = time.perf_counter()
        n = len(resp.json())
        parse += time.perf_counter() - t
        if n == 0:
            raise RuntimeError(f"ran dry after {got} jobs")
        got += n
    elapsed = time.perf_counter() - start
    assert got == n_jobs
    http.delete(f"/sessions/{session}").raise_for_status()  # releases every job for the next round
    return elapsed - parse, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--chunk", type=int, default=1_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=5, help="rounds per path")
    parser.add_argument("--clients", type=int, default=2, help="concurrent launchers in the parallel rounds")
    args = parser.parse_args()

    print(machine_line())
    with bench_server(args.workers) as bench:
        server, http, site, app, url = bench, bench.http, bench.site, bench.app, bench.database_url
        create_jobs(http, app["id"], args.jobs)
        print(f"gunicorn workers={args.workers}, jobs={args.jobs}, chunk={args.chunk}, db={url.split('@')[-1]}")
        # Warm-up round (connections, plans, caches), not counted.
        acquire_round(http, site["id"], args.jobs, args.chunk, mpi=False)
        gc.collect()
        gc.freeze()
        gc.disable()
        results: dict[str, list[tuple[float, float]]] = {"serial": [], "mpi": []}
        for r in range(args.repeat):
            for path in ("serial", "mpi"):
                http_s, total_s = acquire_round(http, site["id"], args.jobs, args.chunk, mpi=path == "mpi")
                results[path].append((http_s, total_s))
                print(
                    f"  round {r + 1} {path:<6} {args.jobs} jobs: HTTP {args.jobs / http_s:>9,.0f} jobs/s, "
                    f"with client parse {args.jobs / total_s:>9,.0f} jobs/s",
                    flush=True,
                )
        clients = [
            httpx.Client(base_url=server.base_url, timeout=300, headers=dict(http.headers)) for _ in range(args.clients)
        ]
        parallel = []
        for r in range(args.repeat):
            elapsed = acquire_parallel(clients, site["id"], args.jobs, args.chunk)
            parallel.append(elapsed)
            print(f"  round {r + 1} {args.clients} launchers in parallel: {args.jobs / elapsed:>9,.0f} jobs/s")
        print("median over rounds:")
        med_par = statistics.median(parallel)
        print(f"  {args.clients} parallel launchers {args.jobs / med_par:>9,.0f} jobs/s ({med_par:.3f} s)")
        for path, rows in results.items():
            med_http = statistics.median(r[0] for r in rows)
            med_total = statistics.median(r[1] for r in rows)
            print(
                f"  {path:<6} {args.jobs / med_http:>9,.0f} jobs/s HTTP ({med_http:.3f} s), "
                f"{args.jobs / med_total:>9,.0f} jobs/s with client parse"
            )


if __name__ == "__main__":
    main()
