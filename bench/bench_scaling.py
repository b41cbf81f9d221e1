"""One API host against two, and what a PostgreSQL restart costs behind PgBouncer (docs/scaling.md).

    .venv/bin/python bench/bench_scaling.py                 # throughput: 1 host direct, 1 and 2 hosts via PgBouncer
    .venv/bin/python bench/bench_scaling.py --restart       # PostgreSQL restarts under load, 2 hosts via PgBouncer

Topologies (tests/multihost.py): a private PostgreSQL (fsync on), Debian's pgbouncer in transaction mode, and
API hosts that are network namespaces of their own (as root), each a gunicorn master with `--workers` workers
and the access log off. Loads, each after an untimed warm-up:

- launchers: `--launchers` clients, each with a session, loop over acquire 20 jobs, PATCH them RUNNING, PATCH
  them RUN_DONE, tick the session, until `--jobs` jobs are done; requests go round robin over the hosts;
- reads: `--readers` clients send `GET /jobs/?limit=20` for `--seconds`, round robin over the hosts.

Run as root (network namespaces); needs pgbouncer. The clients run in this process (threads), on the same
cores as the servers.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine_line

from balsam.server.db.migrate import upgrade
from balsam.server.embedded.postgres import PostgresServer
from tests.harness import PgEndpoint
from tests.multihost import ApiHost, HostNetwork, pgbouncer
from tests.serving import free_port

SECRET = uuid.uuid4().hex


@contextmanager
def topology(
    server: PostgresServer,
    network: HostNetwork,
    work: Path,
    hosts: int,
    via_pgbouncer: bool,
    workers: int,
    logs: list[str] | None = None,
) -> Iterator[list[str]]:
    """API hosts on a fresh database; yields their base URLs (and fills `logs` with the hosts' logs on exit)."""
    name = f"scale_{uuid.uuid4().hex[:6]}"
    server.create_database(name)
    upgrade(server.url(name))
    endpoint = PgEndpoint(str(server.socket_dir), server.port, server.superuser, "postgres")
    with ExitStack() as stack:
        bouncer = stack.enter_context(pgbouncer(work / f"pgb-{name}", endpoint, network.pgbouncer_listen))
        apis = []
        for host in network.hosts[:hosts]:
            url = bouncer.url(name, host.pgbouncer_address) if via_pgbouncer else server.url(name)
            env = {
                "BALSAM_DATABASE_URL": url.replace("+psycopg2", ""),
                "BALSAM_DATABASE_PGBOUNCER": "true" if via_pgbouncer else "false",
                "BALSAM_AUTH_SECRET_KEY": SECRET,
                "BALSAM_LOG_LEVEL": "WARNING",
                "GUNICORN_KEEPALIVE": "30",
                "GUNICORN_ACCESS_LOG": "off",
            }
            api = ApiHost(host, env, work / f"{name}-{host.name}", workers=workers)
            api.start()
            stack.callback(api.stop)
            apis.append(api)
        yield [a.base_url for a in apis]
        if logs is not None:
            logs += [a.log() for a in apis]


def login(base_url: str) -> tuple[dict[str, str], int, int]:
    with httpx.Client(base_url=base_url, timeout=60) as http:
        user = f"bench-{uuid.uuid4().hex[:6]}"
        http.post("/auth/password/register", json={"username": user, "password": "pw"}).raise_for_status()
        token = http.post("/auth/password/login", data={"username": user, "password": "pw"}).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        site = http.post("/sites/", json={"name": "bench", "path": "/bench"}, headers=auth).json()["id"]
        app = http.post(
            "/apps/",
            json={"site_id": site, "name": "bench", "serialized_class": "c", "source_code": "s"},
            headers=auth,
        ).json()["id"]
    return auth, int(site), int(app)


class RoundRobin:
    """One keep-alive client per host; each request goes to the next host."""

    def __init__(self, urls: list[str], auth: dict[str, str], start: int = 0) -> None:
        self.clients = [httpx.Client(base_url=u, headers=auth, timeout=120) for u in urls]
        self.i = start
        self.requests = 0

    def next(self) -> httpx.Client:
        self.i += 1
        self.requests += 1
        return self.clients[self.i % len(self.clients)]

    def close(self) -> None:
        for c in self.clients:
            c.close()


def run_threads(target: Callable[[int], None], count: int) -> float:
    """Run `target(k)` for k in range(count) in threads at once; the wall time until all have ended."""
    threads = [threading.Thread(target=target, args=(k,)) for k in range(count)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - started


def launchers(
    urls: list[str], auth: dict[str, str], site: int, app: int, n_jobs: int, n_launchers: int
) -> dict[str, float]:
    setup = RoundRobin(urls, auth)
    for start in range(0, n_jobs, 1000):
        count = min(1000, n_jobs - start)
        body = [{"app_id": app, "workdir": f"l/{uuid.uuid4().hex[:8]}/{i}"} for i in range(count)]
        setup.next().post("/jobs/", json=body).raise_for_status()
    setup.close()
    done = [0] * n_launchers
    requests = [0] * n_launchers
    errors: list[str] = []

    def launcher(k: int) -> None:
        rr = RoundRobin(urls, auth, start=k)
        try:
            sid = rr.next().post("/sessions/", json={"site_id": site}).json()["id"]
            while True:
                got = rr.next().post(
                    f"/sessions/{sid}", json={"max_num_jobs": 20, "filter_tags": {}, "states": ["STAGED_IN"]}
                )
                got.raise_for_status()
                ids = [j["id"] for j in got.json()]
                if not ids:
                    break
                for state in ("RUNNING", "RUN_DONE"):
                    rr.next().patch("/jobs/", json=[{"id": i, "state": state} for i in ids]).raise_for_status()
                rr.next().put(f"/sessions/{sid}").raise_for_status()
                done[k] += len(ids)
            rr.next().delete(f"/sessions/{sid}")
        except httpx.HTTPError as exc:
            errors.append(repr(exc))
        requests[k] = rr.requests
        rr.close()

    elapsed = run_threads(launcher, n_launchers)
    if errors or sum(done) != n_jobs:
        raise RuntimeError(f"launchers: {sum(done)} of {n_jobs} jobs, errors {errors[:3]}")
    return {"jobs_s": n_jobs / elapsed, "req_s": sum(requests) / elapsed}


def readers(urls: list[str], auth: dict[str, str], n_readers: int, seconds: float) -> dict[str, float]:
    latencies: list[list[float]] = [[] for _ in range(n_readers)]
    errors: list[str] = []
    stop = time.perf_counter() + seconds

    def reader(k: int) -> None:
        rr = RoundRobin(urls, auth, start=k)
        try:
            while time.perf_counter() < stop:
                t0 = time.perf_counter()
                rr.next().get("/jobs/", params={"limit": 20}).raise_for_status()
                latencies[k].append(time.perf_counter() - t0)
        except httpx.HTTPError as exc:
            errors.append(repr(exc))
        rr.close()

    elapsed = run_threads(reader, n_readers)
    if errors:
        raise RuntimeError(f"readers: {errors[:3]}")
    every = sorted(x for lat in latencies for x in lat)
    return {
        "req_s": len(every) / elapsed,
        "p50_ms": 1000 * every[len(every) // 2],
        "p99_ms": 1000 * every[int(len(every) * 0.99)],
    }


def throughput(args: argparse.Namespace, server: PostgresServer, network: HostNetwork, work: Path) -> None:
    cases = [("1 host, direct", 1, False), ("1 host, PgBouncer", 1, True), ("2 hosts, PgBouncer", 2, True)]
    for label, hosts, via in cases:
        with topology(server, network, work, hosts, via, args.workers) as urls:
            auth, site, app = login(urls[0])
            launchers(urls, auth, site, app, 400, args.launchers)  # warm-up
            readers(urls, auth, args.readers, 2)
            loops = [launchers(urls, auth, site, app, args.jobs, args.launchers) for _ in range(args.repeat)]
            reads = [readers(urls, auth, args.readers, args.seconds) for _ in range(args.repeat)]
            med = {k: statistics.median(r[k] for r in loops) for k in loops[0]}
            rmed = {k: statistics.median(r[k] for r in reads) for k in reads[0]}
            print(
                f"{label:<20} launchers: {med['jobs_s']:>6,.0f} jobs/s ({med['req_s']:>5,.0f} req/s)   "
                f"GET /jobs/: {rmed['req_s']:>6,.0f} req/s p50 {rmed['p50_ms']:.1f} ms p99 {rmed['p99_ms']:.1f} ms"
                f"   rounds: {[round(r['jobs_s']) for r in loops]} / {[round(r['req_s']) for r in reads]}",
                flush=True,
            )


class RestartLoad:
    """Clients that create jobs, read them and PATCH their state, round robin over the hosts, recording every
    failed request and every write the server acknowledged."""

    def __init__(self, urls: list[str], auth: dict[str, str], app: int, clients: int = 6) -> None:
        self.urls, self.auth, self.app = urls, auth, app
        self.acked: dict[int, str] = {}  # job id -> last state acknowledged
        self.uncertain: dict[int, set[str]] = {}  # a failed PATCH may still have committed
        self.failures: list[str] = []
        self.slowest = 0.0
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._client, args=(k,)) for k in range(clients)]

    def _request(self, rr: RoundRobin, k: int, n: int, mine: list[int]) -> httpx.Response:
        if len(mine) < 3 or n % 3 == 0:
            resp = rr.next().post("/jobs/", json=[{"app_id": self.app, "workdir": f"r{k}/{n}"}])
            if resp.status_code == 201:
                job = resp.json()[0]
                mine.append(job["id"])
                with self.lock:
                    self.acked[job["id"]] = job["state"]
            return resp
        job_id = mine[n % len(mine)]
        if n % 3 == 1:
            return rr.next().get(f"/jobs/{job_id}")
        state = ["PREPROCESSED", "RUNNING", "RUN_DONE"][n % 7 % 3]
        with self.lock:
            self.uncertain.setdefault(job_id, set()).add(state)
        resp = rr.next().patch("/jobs/", json=[{"id": job_id, "state": state}])
        if resp.status_code == 200:
            with self.lock:
                self.acked[job_id] = state
                self.uncertain.pop(job_id, None)
        return resp

    def _client(self, k: int) -> None:
        rr = RoundRobin(self.urls, self.auth, start=k)
        mine: list[int] = []
        n = 0
        while not self.stop.is_set():
            n += 1
            t0 = time.perf_counter()
            try:
                resp = self._request(rr, k, n, mine)
                failure = f"HTTP {resp.status_code} {resp.text[:120]}" if resp.status_code >= 400 else None
            except httpx.HTTPError as exc:
                failure = repr(exc)
            with self.lock:
                if failure:
                    self.failures.append(failure)
                self.slowest = max(self.slowest, time.perf_counter() - t0)
        rr.close()

    def lost(self) -> list[int]:
        stored: dict[int, str] = {}
        with httpx.Client(base_url=self.urls[0], headers=self.auth, timeout=60) as http:
            ids = sorted(self.acked)
            for i in range(0, len(ids), 500):
                page = http.get("/jobs/", params={"id": ids[i : i + 500], "limit": 500}).json()["results"]
                stored.update({j["id"]: j["state"] for j in page})
        return [j for j, s in self.acked.items() if stored.get(j) not in {s, *self.uncertain.get(j, ())}]


def restart(args: argparse.Namespace, server: PostgresServer, network: HostNetwork, work: Path) -> None:
    """Load over the hosts while PostgreSQL restarts twice (fast, then immediate: crash recovery)."""
    for label, hosts, via in [("2 hosts, PgBouncer", 2, True), ("1 host, direct", 1, False)]:
        logs: list[str] = []
        with topology(server, network, work, hosts, via, args.workers, logs) as urls:
            auth, _, app = login(urls[0])
            load = RestartLoad(urls, auth, app)
            for t in load.threads:
                t.start()
            took = []
            for mode in ("fast", "immediate"):
                time.sleep(3)
                t0 = time.perf_counter()
                server.stop(mode=mode)
                server.start()
                took.append(time.perf_counter() - t0)
            time.sleep(3)
            load.stop.set()
            for t in load.threads:
                t.join()
            lost = load.lost()
            print(
                f"{label:<20} restart fast {took[0]:.1f} s + immediate {took[1]:.1f} s: {len(load.acked)} jobs "
                f"acknowledged, {len(load.failures)} failed requests, {len(lost)} acknowledged writes lost, "
                f"slowest request {load.slowest:.1f} s; failures: {collections.Counter(load.failures).most_common(3)}",
                flush=True,
            )
        causes = collections.Counter(m for log in logs for m in re.findall(r"Database unavailable: (.*)", log))
        print(f"{'':<20} causes logged by the hosts: {causes.most_common(5)}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers per host")
    parser.add_argument("--jobs", type=int, default=2000, help="jobs per launcher round")
    parser.add_argument("--launchers", type=int, default=8)
    parser.add_argument("--readers", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=8.0, help="length of a read round")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--restart", action="store_true", help="measure PostgreSQL restarts under load instead")
    args = parser.parse_args()
    print(machine_line())
    os.environ.pop("BALSAM_EMBEDDED_PG_FSYNC", None)  # fsync on, as in production
    with tempfile.TemporaryDirectory(prefix="balsam-scale-") as tmp, HostNetwork(2) as network:
        work = Path(tmp)
        work.chmod(0o711)
        server = PostgresServer(work / "pg", port=free_port())
        server.start()
        try:
            print(
                f"hosts: {'network namespaces' if network.namespaces else 'loopback addresses'}, "
                f"{args.workers} workers each"
            )
            (restart if args.restart else throughput)(args, server, network, work)
        finally:
            server.stop(mode="fast")


if __name__ == "__main__":
    main()
