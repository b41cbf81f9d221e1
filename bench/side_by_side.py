"""Our server against upstream Balsam, same workloads, same run, same machine (not run by CI).

    .venv/bin/python bench/side_by_side.py                     # both servers, every workload
    .venv/bin/python bench/side_by_side.py --no-upstream       # ours only (e.g. to profile)
    .venv/bin/python bench/side_by_side.py --ours-tree /tmp/before --only a   # another checkout as "ours"

Upstream is started (or reused) with `../shared/peer/upstream.sh start`; set PEER_ROOT, PEER_PG_PORT,
PEER_REDIS_PORT and PEER_API_PORT to keep it apart from other users of the peer. Its user is created with
`upstream.sh user`. Ours runs as bench/common.py runs it: a private PostgreSQL (fsync on), migrations,
gunicorn with `balsam/server/gunicorn.conf.example.py`, 2 workers, access log off. With `--ours-tree DIR`
the migrations, the gunicorn config and the application come from DIR (on PYTHONPATH ahead of this venv's
checkout), so a `git worktree add /tmp/before <commit>` gives a before/after pair.

Workloads (each against both servers, one after the other, never at once):
  (a) `GET /jobs/{id}` of one job: wrk, 32 connections (2 threads), `--duration` s: req/s, p50, p99;
      then 1 connection (1 thread): median latency.
  (b) `--launchers` launchers (threads, one connection and one session each), each looping: acquire 10
      PREPROCESSED jobs (POST /sessions/{id}, the serial launcher's body), PATCH them RUNNING, tick the session
      (PUT /sessions/{id}), PATCH them RUN_DONE, until `--launcher-jobs` jobs are done: jobs/s.
  (c) 10,000 jobs: create in requests of 5,000, bulk PATCH (state PREPROCESSED and data) in requests of 5,000,
      list them (time to last byte of `GET /jobs/?tags=...`), acquire them in calls of 1,000. For ours the
      list is compared with psql's own `json_agg` of the same rows on our database.
  (r) peak RSS per worker while it serves a 100,000-job list (VmHWM after resetting it via clear_refs;
      needs root or the workers' owner).
The client's garbage collector is off during the timed parts.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT, database, machine_line

from tests.serving import free_port, wait_healthy

PEER_SCRIPT = ROOT.parent / "shared" / "peer" / "upstream.sh"
if not PEER_SCRIPT.exists():
    PEER_SCRIPT = Path("/work/shared/peer/upstream.sh")
JSON = {"content-type": "application/json"}


@dataclass
class Target:
    name: str
    base_url: str
    token: str
    master_pid: int
    site_id: int = 0
    app_id: int = 0
    psql: list[str] | None = None  # psql command line for the target's database (ours only)
    database_url: str | None = None  # ours only
    results: dict[str, float] = field(default_factory=dict)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, headers=self.headers, timeout=600)

    postmaster_pid: int = 0

    def worker_pids(self) -> list[int]:
        path = Path(f"/proc/{self.master_pid}/task/{self.master_pid}/children")
        return sorted(int(p) for p in path.read_text().split())


# ---------------------------------------------------------------- starting the servers


@contextmanager
def start_ours(tree: Path, workers: int, workdir: Path, pg_settings: list[str]) -> Iterator[Target]:
    with database(workdir) as url:
        env = {
            **os.environ,
            "PYTHONPATH": str(tree),
            "BALSAM_DATABASE_URL": url,
            "BALSAM_AUTH_SECRET_KEY": uuid.uuid4().hex,
            "BALSAM_AUTH_ALLOW_REGISTRATION": "true",
            "BALSAM_LOG_LEVEL": "WARNING",
            "GUNICORN_KEEPALIVE": "30",
            "GUNICORN_WORKERS": str(workers),
            "SERVER_HOST": "127.0.0.1",
        }
        env.pop("BALSAM_REDIS_PARAMS", None)
        migrate = "import sys; from balsam.server.db.migrate import upgrade; upgrade(sys.argv[1])"
        subprocess.run([sys.executable, "-c", migrate, url], env=env, cwd=workdir, check=True)
        if pg_settings:
            from sqlalchemy import create_engine, text

            engine = create_engine(url, isolation_level="AUTOCOMMIT")
            with engine.connect() as conn:
                name = conn.execute(text("SELECT current_database()")).scalar_one()
                for setting in pg_settings:
                    key, _, value = setting.partition("=")
                    conn.execute(text(f'ALTER DATABASE "{name}" SET {key} = {value}'))
            engine.dispose()
        port = free_port()
        env["SERVER_PORT"] = str(port)
        conf = tree / "balsam" / "server" / "gunicorn.conf.example.py"
        # Access log off: with no handler at all where the tree's config knows GUNICORN_ACCESS_LOG, else (an
        # older --ours-tree) written to /dev/null, which still formats a line per request.
        env["GUNICORN_ACCESS_LOG"] = "off"
        quiet = [] if "GUNICORN_ACCESS_LOG" in conf.read_text() else ["--access-logfile", "/dev/null"]
        log = open(workdir / "gunicorn.log", "wb")  # noqa: SIM115 (closed below)
        proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(conf), *quiet, "balsam.server.main:app"],
            cwd=workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base_url = f"http://127.0.0.1:{port}"
        try:
            wait_healthy(base_url, timeout=120, proc=proc)
            user = f"sbs-{uuid.uuid4().hex[:6]}"
            with httpx.Client(base_url=base_url, timeout=60) as http:
                http.post("/auth/password/register", json={"username": user, "password": "pw"}).raise_for_status()
                token = http.post("/auth/password/login", data={"username": user, "password": "pw"}).json()
            target = Target("ours", base_url, token["access_token"], proc.pid, psql=psql_command(url), database_url=url)
            target.postmaster_pid = postmaster_of(url)
            wait_workers(target, workers)
            yield target
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()


def postmaster_of(url: str) -> int:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.connect() as conn:
        datadir = conn.execute(text("SHOW data_directory")).scalar_one()
    engine.dispose()
    return int((Path(datadir) / "postmaster.pid").read_text().split()[0])


def psql_command(url: str) -> list[str]:
    from sqlalchemy.engine import make_url

    u = make_url(url)
    host = u.query.get("host") or u.host or "127.0.0.1"
    port = u.query.get("port") or u.port or 5432
    return ["psql", "-X", "-q", "-h", str(host), "-p", str(port), "-U", u.username or "postgres", "-d", str(u.database)]


def peer_env() -> dict[str, str]:
    return {**os.environ}


def peer(*args: str) -> str:
    out = subprocess.run([str(PEER_SCRIPT), *args], env=peer_env(), check=True, capture_output=True, text=True)
    return out.stdout


@contextmanager
def start_upstream(workers: int) -> Iterator[Target]:
    os.environ.setdefault("PEER_WORKERS", str(workers))
    peer("start")
    try:
        root = Path(os.environ.get("PEER_ROOT", "/tmp/peer"))
        base_url = f"http://127.0.0.1:{os.environ.get('PEER_API_PORT', '58000')}"
        user = f"sbs{uuid.uuid4().hex[:6]}"
        peer("user", user, "pw")
        with httpx.Client(base_url=base_url, timeout=60) as http:
            resp = http.post("/auth/password/login", data={"username": user, "password": "pw"})
            resp.raise_for_status()
        master = int((root / "gunicorn.pid").read_text().split()[0])
        target = Target("upstream", base_url, resp.json()["access_token"], master)
        pm_file = root / "pg" / "postmaster.pid"
        target.postmaster_pid = int(pm_file.read_text().split()[0]) if pm_file.exists() else 0
        wait_workers(target, workers)
        yield target
    finally:
        peer("stop")


def wait_workers(target: Target, workers: int) -> None:
    deadline = time.monotonic() + 120
    while len(target.worker_pids()) < workers and time.monotonic() < deadline:
        time.sleep(0.5)
    # Every worker answers at least once before timing starts (imports, validators, pools).
    with target.client() as http:
        for _ in range(20 * workers):
            http.get("/sites/", headers={"connection": "close"}).raise_for_status()


def make_site(target: Target, tag: str) -> None:
    with target.client() as http:
        site = http.post("/sites/", json={"name": f"sbs-{tag}", "path": f"/sbs/{tag}"})
        site.raise_for_status()
        app = http.post(
            "/apps/",
            json={"site_id": site.json()["id"], "name": f"sbs_{tag}", "serialized_class": "c", "source_code": "s"},
        )
        app.raise_for_status()
        target.site_id, target.app_id = site.json()["id"], app.json()["id"]


# ---------------------------------------------------------------- helpers


def create_jobs(http: httpx.Client, target: Target, n: int, tag: str, chunk: int = 5000) -> list[int]:
    ids: list[int] = []
    for start in range(0, n, chunk):
        body = [
            {
                "app_id": target.app_id,
                "workdir": f"{tag}/job{i}",
                "tags": {"sbs": tag, "i": str(i % 10)},
                "serialized_parameters": "x" * 64,
                "num_nodes": 1,
                "node_packing_count": 1 + i % 2,
                "wall_time_min": i % 60,
            }
            for i in range(start, min(start + chunk, n))
        ]
        resp = http.post("/jobs/", content=json.dumps(body), headers=JSON)
        resp.raise_for_status()
        ids.extend(j["id"] for j in resp.json())
    return ids


def now() -> str:
    return datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ")


def patch_state(http: httpx.Client, ids: list[int], state: str, chunk: int = 5000, data: bool = False) -> None:
    for start in range(0, len(ids), chunk):
        items: list[dict[str, Any]] = [
            {"id": i, "state": state, "state_timestamp": now(), "state_data": {}} for i in ids[start : start + chunk]
        ]
        if data:
            for item in items:
                item["data"] = {"step": "patched"}
        resp = http.patch("/jobs/", content=json.dumps(items), headers=JSON)
        resp.raise_for_status()


def acquire_body(n: int, tag: str) -> str:
    # The fields the published client's acquire call sends, as its serial-mode launcher fills them.
    return json.dumps(
        {
            "max_num_jobs": n,
            "max_wall_time_min": None,
            "max_nodes_per_job": None,
            "max_aggregate_nodes": None,
            "serial_only": False,
            "filter_tags": {"sbs": tag},
            "states": ["PREPROCESSED", "RESTART_READY"],
            "app_ids": [],
        }
    )


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    assert m, text
    return float(m.group(1)) * _UNITS[m.group(2)]


def wrk(url: str, token: str, connections: int, threads: int, seconds: float) -> dict[str, float]:
    out = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--latency",
            "--timeout",
            "10s",
            "-H",
            f"Authorization: Bearer {token}",
            url,
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))}  # type: ignore[union-attr]
    for pct in ("50", "99"):
        result[f"p{pct}"] = _ms(re.search(rf"^\s+{pct}%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    if re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        print(out)
        raise RuntimeError("wrk saw error responses")
    # A connection the server drops counts as a socket error (upstream does it now and then); reported.
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    result["socket_errors"] = float(sum(int(g) for g in sock.groups())) if sock else 0.0
    return result


# ---------------------------------------------------------------- workloads


def workload_a(target: Target, seconds: float) -> None:
    with target.client() as http:
        job_id = create_jobs(http, target, 1, "a")[0]
    url = f"{target.base_url}/jobs/{job_id}"
    wrk(url, target.token, 32, 2, 2)  # warm-up: every worker's connections and caches
    pids = target.worker_pids()
    cpu0 = cpu_now(target, pids, client_children=True)
    start = time.perf_counter()
    r32 = wrk(url, target.token, 32, 2, seconds)
    elapsed = time.perf_counter() - start
    cpu1 = cpu_now(target, pids, client_children=True)
    used = [b - a for a, b in zip(cpu0, cpu1, strict=True)]
    # Where the two cores went at 32 connections: the workers, PostgreSQL and wrk (a reaped child of this
    # process), as shares of one core, and per request; what bounds requests/s when they add up to the machine.
    requests = r32["rps"] * elapsed
    print(
        f"    (a) CPU over {elapsed:.1f} s: workers {sum(used[:-2]) / elapsed:.0%}, postgres {used[-2] / elapsed:.0%},"
        f" wrk and client {used[-1] / elapsed:.0%}; per request: workers {1e3 * sum(used[:-2]) / requests:.2f} ms,"
        f" postgres {1e3 * used[-2] / requests:.2f} ms, wrk {1e3 * used[-1] / requests:.2f} ms"
    )
    r1 = wrk(url, target.token, 1, 1, max(3.0, seconds / 2))
    target.results.update(
        {
            "a_rps": r32["rps"],
            "a_p50": r32["p50"],
            "a_p99": r32["p99"],
            "a_socket_errors": r32["socket_errors"] + r1["socket_errors"],
            "a1_p50": r1["p50"],
            "a1_rps": r1["rps"],
        }
    )


@contextmanager
def wait_events(target: Target, enabled: bool) -> Iterator[None]:
    """Samples pg_stat_activity every 20 ms while the block runs, then prints what the server's backends were
    doing (state / wait event), as shares of the samples."""
    if not enabled or target.database_url is None:
        yield
        return
    from collections import Counter

    from sqlalchemy import create_engine, text

    engine = create_engine(target.database_url, isolation_level="AUTOCOMMIT")
    counts: Counter[str] = Counter()
    stop = threading.Event()
    query = text(
        "SELECT state, wait_event_type, wait_event FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
    )

    def sample() -> None:
        with engine.connect() as conn:
            while not stop.is_set():
                for state, wtype, wevent in conn.execute(query):
                    if state != "idle":
                        counts[f"{state} / {wtype or '-'}:{wevent or 'CPU'}"] += 1
                time.sleep(0.02)

    thread = threading.Thread(target=sample)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        engine.dispose()
        total = sum(counts.values()) or 1
        print("    non-idle backends in pg_stat_activity samples (state / wait event):")
        for key, n in counts.most_common(12):
            print(f"      {100 * n / total:5.1f}%  {key}")


def cpu_now(target: Target, pids: list[int], client_children: bool = False) -> list[float]:
    """CPU seconds so far of each worker, then of PostgreSQL, then of this client (with its reaped children,
    such as wrk, when `client_children`)."""
    return [cpu_seconds(p) for p in pids] + [
        postgres_cpu(target.postmaster_pid),
        cpu_seconds(os.getpid(), children=client_children),
    ]


def connections_per_worker(target: Target, client_ports: list[int], pids: list[int]) -> dict[int, int]:
    """Which worker process holds each launcher's connection (from /proc/net/tcp and the workers' fds)."""
    from collections import Counter

    from tests.serving import serving_worker

    server_port = int(target.base_url.rsplit(":", 1)[1])
    found = Counter(serving_worker(server_port, p, set(pids)) for p in client_ports if p)
    return {pid: found.get(pid, 0) for pid in pids}


_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int, children: bool = False) -> float:
    """utime+stime of `pid` (plus that of its reaped children when `children`), in seconds."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    ticks = int(fields[11]) + int(fields[12]) + ((int(fields[13]) + int(fields[14])) if children else 0)
    return ticks / _TICK


def postgres_cpu(postmaster: int) -> float:
    """CPU of a PostgreSQL cluster so far: the postmaster with its reaped children, plus its live children."""
    if not postmaster:
        return 0.0
    kids = Path(f"/proc/{postmaster}/task/{postmaster}/children").read_text().split()
    return cpu_seconds(postmaster, children=True) + sum(cpu_seconds(int(k)) for k in kids)


def workload_b(target: Target, launchers: int, n_jobs: int, sample_waits: bool = False) -> None:
    tag = "b"
    with target.client() as http:
        ids = create_jobs(http, target, n_jobs, tag)
        patch_state(http, ids, "PREPROCESSED")
    body = acquire_body(10, tag)
    done = [0] * launchers
    lost = [0] * launchers
    ports = [0] * launchers
    empty = [0] * launchers  # acquires that returned nothing while jobs were left
    short = [0] * launchers  # acquires that returned fewer than 10
    lock = threading.Lock()
    barrier = threading.Barrier(launchers + 1)
    errors: list[BaseException] = []

    def launcher(k: int) -> None:
        try:
            with target.client() as http:

                def new_session() -> int:
                    resp = http.post("/sessions/", json={"site_id": target.site_id})
                    resp.raise_for_status()
                    return int(resp.json()["id"])

                sid = new_session()
                probe = http.get("/sites/", params={"limit": 0})
                stream = probe.extensions.get("network_stream")
                sock = stream.get_extra_info("socket") if stream is not None else None
                if sock is not None:
                    ports[k] = sock.getsockname()[1]
                barrier.wait()
                while True:
                    resp = http.post(f"/sessions/{sid}", content=body, headers=JSON)
                    if resp.status_code == 404:
                        # What the site agent does when its session is gone. Upstream answers 404 now and then
                        # to the first acquire of a session it has just created; counted and reported.
                        lost[k] += 1
                        sid = new_session()
                        continue
                    resp.raise_for_status()
                    got = [j["id"] for j in resp.json()]
                    if not got:
                        with lock:
                            finished = sum(done) >= n_jobs
                        if finished:
                            break
                        # Jobs remain (held by others, or handed out short): a launcher polls again.
                        empty[k] += 1
                        time.sleep(0.1)
                        continue
                    patch_state(http, got, "RUNNING")
                    tick = http.put(f"/sessions/{sid}")
                    if tick.status_code == 404:
                        lost[k] += 1
                        sid = new_session()
                    else:
                        tick.raise_for_status()
                    patch_state(http, got, "RUN_DONE")
                    with lock:
                        done[k] += len(got)
                    short[k] += len(got) < 10
                http.delete(f"/sessions/{sid}").raise_for_status()
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=launcher, args=(k,)) for k in range(launchers)]
    for t in threads:
        t.start()
    pids = target.worker_pids()
    with wait_events(target, sample_waits):
        barrier.wait()
        print(f"    (b) launcher connections per worker: {connections_per_worker(target, ports, pids)}")
        cpu0 = cpu_now(target, pids)
        start = time.perf_counter()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - start
        cpu1 = cpu_now(target, pids)
    used = [b - a for a, b in zip(cpu0, cpu1, strict=True)]
    # Where the CPU went while the launchers ran: each worker, PostgreSQL, this client (share of one core).
    shares = ", ".join(f"worker {p} {u / elapsed:.0%}" for p, u in zip(pids, used, strict=False))
    print(
        f"    (b) CPU over {elapsed:.1f} s: {shares}, postgres {used[-2] / elapsed:.0%}, client {used[-1] / elapsed:.0%}"
    )
    target.results["b_server_cpu_ms_per_job"] = 1e3 * sum(used[:-2]) / n_jobs
    target.results["b_pg_cpu_ms_per_job"] = 1e3 * used[-2] / n_jobs
    if errors:
        raise errors[0]
    assert sum(done) == n_jobs, (sum(done), n_jobs)
    target.results["b_jobs_s"] = n_jobs / elapsed
    target.results["b_sessions_lost"] = sum(lost)
    target.results["b_empty_acquires"] = sum(empty)
    target.results["b_short_acquires"] = sum(short)


def json_agg_ms(target: Target, tag: str) -> float:
    assert target.psql is not None
    sql = (
        "\\timing on\n"
        f'SELECT json_agg(j) FROM (SELECT * FROM jobs WHERE tags @> \'{{"sbs": "{tag}"}}\' ORDER BY id) j \\g /dev/null\n'
    )
    times = []
    for _ in range(3):
        out = subprocess.run(target.psql, input=sql, capture_output=True, text=True, check=True).stdout
        times.append(float(re.search(r"Time: ([\d.]+) ms", out).group(1)))  # type: ignore[union-attr]
    return min(times)


def workload_c(target: Target, n_jobs: int) -> None:
    tag = "c"
    with target.client() as http:
        t0 = time.perf_counter()
        ids = create_jobs(http, target, n_jobs, tag)
        t1 = time.perf_counter()
        patch_state(http, ids, "PREPROCESSED", data=True)
        t2 = time.perf_counter()
        lists = []
        for _ in range(3):
            s = time.perf_counter()
            with http.stream("GET", "/jobs/", params={"tags": f"sbs:{tag}", "limit": n_jobs}) as resp:
                resp.raise_for_status()
                size = sum(len(b) for b in resp.iter_raw())
            lists.append(time.perf_counter() - s)
        assert size > n_jobs * 100, size
        # PostgreSQL's own json_agg of the same rows, at the same moment: seconds after 10,000 inserts and
        # updates the rows' dead versions and autovacuum weigh on both, and later on neither.
        json_agg = json_agg_ms(target, tag) if target.psql is not None and shutil.which(target.psql[0]) else None
        sid = http.post("/sessions/", json={"site_id": target.site_id}).json()["id"]
        body = acquire_body(1000, tag)
        got = 0
        t3 = time.perf_counter()
        while True:
            resp = http.post(f"/sessions/{sid}", content=body, headers=JSON)
            resp.raise_for_status()
            n = len(resp.json())
            if not n:
                break
            got += n
        t4 = time.perf_counter()
        assert got == n_jobs, got
        http.delete(f"/sessions/{sid}").raise_for_status()
    target.results.update(
        {
            "c_create": n_jobs / (t1 - t0),
            "c_patch": n_jobs / (t2 - t1),
            "c_list_ms": min(lists) * 1e3,
            "c_acquire": n_jobs / (t4 - t3),
        }
    )
    if json_agg is not None:
        target.results["c_json_agg_ms"] = json_agg


def status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def workload_rss(target: Target, n_jobs: int) -> None:
    tag = "r"
    with target.client() as http:
        create_jobs(http, target, n_jobs, tag)
    pids = target.worker_pids()
    base = {p: status_kb(p, "VmRSS") for p in pids}
    for p in pids:
        Path(f"/proc/{p}/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    # Two requests on fresh connections, so that with luck each worker serves one; the figure is the peak of
    # whichever worker served, over its RSS before.
    for _ in range(2):
        with target.client() as http:
            resp = http.get("/jobs/", params={"tags": f"sbs:{tag}", "limit": n_jobs}, headers={"connection": "close"})
            resp.raise_for_status()
            assert resp.json()["count"] == n_jobs
    peaks = {p: status_kb(p, "VmHWM") for p in pids}
    target.results["rss_peak_mb"] = max(peaks.values()) / 1024
    target.results["rss_base_mb"] = max(base.values()) / 1024
    target.results["rss_growth_mb"] = max(peaks[p] - base[p] for p in pids) / 1024


# ---------------------------------------------------------------- report

ROWS: list[tuple[str, str, str, bool]] = [
    # key, label, format, higher is better
    ("a_rps", "(a) GET /jobs/{id}, 32 conns: req/s", "{:,.0f}", True),
    ("a_p50", "(a) 32 conns: p50 ms", "{:.1f}", False),
    ("a_p99", "(a) 32 conns: p99 ms", "{:.1f}", False),
    ("a1_p50", "(a) 1 conn: median ms", "{:.2f}", False),
    ("b_jobs_s", "(b) launchers: jobs/s", "{:,.0f}", True),
    ("c_create", "(c) create: jobs/s", "{:,.0f}", True),
    ("c_patch", "(c) bulk PATCH: jobs/s", "{:,.0f}", True),
    ("c_list_ms", "(c) list TTLB ms", "{:.0f}", False),
    ("c_acquire", "(c) acquire: jobs/s", "{:,.0f}", True),
    ("rss_peak_mb", "(r) 100k list: peak RSS/worker MB", "{:.0f}", False),
    ("rss_growth_mb", "(r) 100k list: RSS growth MB", "{:.0f}", False),
]


def report(targets: list[Target]) -> None:
    ours = next((t for t in targets if t.name == "ours"), None)
    up = next((t for t in targets if t.name == "upstream"), None)
    print()
    print(f"| workload | {' | '.join(t.name for t in targets)} |" + (" ours/upstream |" if ours and up else ""))
    print("|---|" + "---|" * len(targets) + ("---|" if ours and up else ""))
    for key, label, fmt, higher in ROWS:
        if not any(key in t.results for t in targets):
            continue
        cells = [fmt.format(t.results[key]) if key in t.results else "-" for t in targets]
        line = f"| {label} | {' | '.join(cells)} |"
        if ours and up and key in ours.results and key in up.results:
            a, b = ours.results[key], up.results[key]
            ratio = a / b if higher else b / a  # >1 means ours is better
            line += f" {ratio:.2f}x |"
        print(line)
    if ours and "c_json_agg_ms" in ours.results:
        agg = ours.results["c_json_agg_ms"]
        print(
            f"\nours: list TTLB {ours.results['c_list_ms']:.0f} ms vs psql json_agg of the same rows {agg:.0f} ms "
            f"= {ours.results['c_list_ms'] / agg:.2f}x"
        )
    print("ratios: >1 means ours is better (throughput ours/upstream; latency and RSS upstream/ours)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-upstream", action="store_true")
    parser.add_argument("--no-ours", action="store_true")
    parser.add_argument("--ours-tree", type=Path, default=ROOT, help="checkout to run as ours (default: this one)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--ours-pg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a PostgreSQL setting for our database (ALTER DATABASE ... SET), e.g. synchronous_commit=off",
    )
    parser.add_argument("--sample-waits", action="store_true", help="(b): print our backends' wait events")
    parser.add_argument("--only", default="abcr", help="workloads to run, e.g. 'a' or 'bc' (r = RSS)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of wrk in (a)")
    parser.add_argument("--launchers", type=int, default=32)
    parser.add_argument("--launcher-jobs", type=int, default=6000)
    parser.add_argument("--jobs", type=int, default=10_000, help="jobs in (c)")
    parser.add_argument("--rss-jobs", type=int, default=100_000)
    args = parser.parse_args()

    print(machine_line())
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"ours: {args.ours_tree} ({git_describe(args.ours_tree)}); workers={args.workers}; load generator: wrk")
    targets: list[Target] = []
    order = [n for n, off in (("upstream", args.no_upstream), ("ours", args.no_ours)) if not off]
    with tempfile.TemporaryDirectory(prefix="balsam-sbs-") as tmpdir:
        for name in order:
            # One server at a time: the other one is stopped while this one is measured.
            with ExitStack() as stack:
                target = stack.enter_context(
                    start_upstream(args.workers)
                    if name == "upstream"
                    else start_ours(args.ours_tree, args.workers, Path(tmpdir), args.ours_pg)
                )
                targets.append(target)
                make_site(target, uuid.uuid4().hex[:6])
                gc.collect()
                gc.disable()
                steps = {
                    "a": lambda t=target: workload_a(t, args.duration),
                    "b": lambda t=target: workload_b(t, args.launchers, args.launcher_jobs, args.sample_waits),
                    "c": lambda t=target: workload_c(t, args.jobs),
                    "r": lambda t=target: workload_rss(t, args.rss_jobs),
                }
                for step in args.only:
                    s = time.perf_counter()
                    before = set(target.results)
                    steps[step]()
                    took = time.perf_counter() - s
                    print(f"  {name} ({step}) {took:.0f} s: {fmt_results(target, before)}", flush=True)
                gc.enable()
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    report(targets)


def fmt_results(target: Target, skip: set[str]) -> str:
    return ", ".join(f"{k}={v:,.1f}" for k, v in target.results.items() if k not in skip)


def git_describe(tree: Path) -> str:
    out = subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return out.stdout.strip() or "?"


if __name__ == "__main__":
    main()
