"""Job throughput benchmark against a real gunicorn over HTTP (not run by CI).

    .venv/bin/python bench/bench_jobs.py [--jobs 10000] [--chunk 5000] [--workers 2] [--repeat 3]

Starts PostgreSQL (embedded, in a temp dir) unless BALSAM_DATABASE_URL is set, migrates, starts gunicorn with
the example config, registers a user, creates a site and an app, then with raw httpx requests:
creates the jobs in requests of `--chunk`, lists them all in one request, and bulk-PATCHes their states
(heterogeneous items, in requests of `--chunk`). Prints jobs/s per step. See bench/README.md.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import bench_server, machine_line


def timed(label: str, n: int, fn: object) -> float:
    assert callable(fn)
    start = time.perf_counter()
    fn()
    elapsed = time.perf_counter() - start
    print(f"  {label:<34} {n:>6} jobs in {elapsed:7.3f} s = {n / elapsed:>9,.0f} jobs/s", flush=True)
    return elapsed


def run_round(http: httpx.Client, app_id: int, n_jobs: int, chunk: int, tag: str) -> dict[str, float]:
    results: dict[str, float] = {}
    ids: list[int] = []

    def create() -> None:
        for start in range(0, n_jobs, chunk):
            body = [
                {
                    "app_id": app_id,
                    "workdir": f"{tag}/job{i}",
                    "tags": {"round": tag, "i": str(i % 10)},
                    "serialized_parameters": "x" * 64,
                    "num_nodes": 1,
                }
                for i in range(start, min(start + chunk, n_jobs))
            ]
            resp = http.post("/jobs/", content=json.dumps(body), headers={"content-type": "application/json"})
            resp.raise_for_status()
            ids.extend(j["id"] for j in resp.json())

    results["create"] = timed(f"create ({chunk}/request)", n_jobs, create)
    listed: list[int] = []

    raw: list[httpx.Response] = []

    def list_all() -> None:
        resp = http.get("/jobs/", params={"tags": f"round:{tag}", "limit": n_jobs})
        resp.raise_for_status()
        raw.append(resp)

    results["list_http"] = timed(f"list (limit={n_jobs}), HTTP only", n_jobs, list_all)
    parse_start = time.perf_counter()
    listed.extend(j["id"] for j in raw[0].json()["results"])
    parse = time.perf_counter() - parse_start
    results["list"] = results["list_http"] + parse
    print(f"  {'  + client json parse':<34} {len(raw[0].content) / 1e6:6.1f} MB in {parse:7.3f} s", flush=True)
    assert sorted(listed) == sorted(ids), "listing does not match the created jobs"

    def update() -> None:
        for start in range(0, len(ids), chunk):
            items = []
            for k, job_id in enumerate(ids[start : start + chunk]):
                item: dict[str, object] = {
                    "id": job_id,
                    "state": "PREPROCESSED",
                    "state_timestamp": "2024-01-02 03:04:05.123456",
                    "state_data": {"k": k},
                }
                if k % 2:
                    item["data"] = {"result": k}
                else:
                    item["return_code"] = 0
                items.append(item)
            resp = http.patch("/jobs/", content=json.dumps(items), headers={"content-type": "application/json"})
            resp.raise_for_status()
            assert resp.json() == len(items)

    results["update"] = timed(f"bulk PATCH state ({chunk}/request)", n_jobs, update)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--chunk", type=int, default=5_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3, help="rounds; each creates --jobs new jobs")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds first (both workers warm up)")
    args = parser.parse_args()

    print(machine_line())
    with bench_server(args.workers) as bench:
        http, app, url = bench.http, bench.app, bench.database_url
        print(f"gunicorn workers={args.workers}, jobs={args.jobs}, chunk={args.chunk}, db={url.split('@')[-1]}")
        rounds = []
        # The client's own garbage collector would add full-heap pauses to the timings: keep it off.
        gc.collect()
        gc.freeze()
        gc.disable()
        for w in range(args.warmup):
            print(f"warm-up {w + 1} (not counted):")
            run_round(http, app["id"], args.jobs, args.chunk, f"w{w}")
        for r in range(args.repeat):
            print(f"round {r + 1}:")
            rounds.append(run_round(http, app["id"], args.jobs, args.chunk, f"r{r}"))
        print("median over rounds:")
        for step in ("create", "update", "list_http", "list"):
            med = statistics.median(x[step] for x in rounds)
            print(f"  {step:<10} {args.jobs / med:>9,.0f} jobs/s  ({med:.3f} s for {args.jobs} jobs)")


if __name__ == "__main__":
    main()
