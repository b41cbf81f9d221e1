"""Two API hosts on one PostgreSQL through PgBouncer (transaction pooling) and one Redis (issue 13).

Each host is a network namespace of its own (tests/multihost.py; loopback addresses where namespaces cannot be
made) running its own gunicorn master and workers with BALSAM_DATABASE_PGBOUNCER on. The database's default
TimeZone is set far from UTC, so nothing may rely on the session's TimeZone either.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg2
import pytest
from sqlalchemy import Engine, create_engine, text
from websockets.sync.client import connect

from balsam.server.db.migrate import MIGRATION_LOCK_KEY, head_revision, upgrade
from tests.ci_env import REQUIRE_PGBOUNCER, unavailable
from tests.conftest import TEST_SECRET
from tests.harness import PgEndpoint
from tests.multihost import PGBOUNCER, ApiHost, HostNetwork, PgBouncer, pgbouncer
from tests.ops_helpers import ROOT
from tests.test_websocket import _subscribers

pytestmark = [pytest.mark.multihost, pytest.mark.pgbouncer, pytest.mark.serving]

SERVER_TIMEZONE = "Pacific/Kiritimati"  # UTC+14: a timestamp taken in the session's zone would be far off
# What must never appear in a log: PgBouncer's refusals, prepared statements that went to another server
# connection, SET/session state surprises, and server errors.
LOG_PROBLEMS = re.compile(
    r"prepared statement|unsupported startup parameter|Traceback|Internal Server Error|"
    r"read-only transaction|current transaction is aborted|\" 5\d\d\b|\bERROR\b",
    re.IGNORECASE,
)


@dataclass
class Cluster:
    hosts: list[ApiHost]
    bouncer: PgBouncer
    database: str
    direct: Engine
    redis_params: dict[str, str]
    network: HostNetwork

    def url(self, i: int) -> str:
        return self.hosts[i].base_url


@pytest.fixture(scope="module")
def cluster(pg: PgEndpoint, redis_params: dict[str, str], servers_dir: Path) -> Iterator[Cluster]:
    if PGBOUNCER is None:
        unavailable("pgbouncer is not installed (Debian: apt-get install pgbouncer)", REQUIRE_PGBOUNCER)
    work = servers_dir / f"multihost-{uuid.uuid4().hex[:6]}"
    work.mkdir()
    work.chmod(0o711)
    database = pg.create_database("balsam_multihost")
    conn = pg.connect()
    with conn.cursor() as cur:
        cur.execute(f"ALTER DATABASE \"{database}\" SET timezone = '{SERVER_TIMEZONE}'")
    conn.close()
    upgrade(pg.url(database))
    direct = create_engine(pg.url(database))
    with HostNetwork(2) as network, pgbouncer(work / "pgbouncer", pg, network.pgbouncer_listen) as bouncer:
        hosts = []
        try:
            for host in network.hosts:
                env = {
                    "BALSAM_DATABASE_URL": bouncer.url(database, host.pgbouncer_address),
                    "BALSAM_DATABASE_PGBOUNCER": "true",
                    "BALSAM_DATABASE_DIRECT_URL": pg.url(database).replace("+psycopg2", ""),
                    "BALSAM_AUTH_SECRET_KEY": TEST_SECRET,
                    "BALSAM_REDIS_PARAMS": json.dumps(redis_params),
                    "BALSAM_LOG_LEVEL": "INFO",
                    "BALSAM_SESSION_SWEEP_INTERVAL_SECONDS": "1",
                }
                api = ApiHost(host, env, work / host.name)
                hosts.append(api)
            threads = [threading.Thread(target=h.start) for h in hosts]  # boot both at once (2 cores)
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            for h in hosts:
                assert h.process is not None and h.process.poll() is None, h.log()[-3000:]
            yield Cluster(hosts, bouncer, database, direct, redis_params, network)
        finally:
            for h in hosts:
                h.stop()
            direct.dispose()
    pg.drop_database(database)


def _login(base_url: str, name: str | None = None) -> tuple[dict[str, str], int]:
    name = name or f"u-{uuid.uuid4().hex[:8]}"
    with httpx.Client(base_url=base_url, timeout=30) as http:
        assert http.post("/auth/password/register", json={"username": name, "password": "pw"}).status_code == 201
        token = http.post("/auth/password/login", data={"username": name, "password": "pw"}).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        return auth, int(http.get("/auth/password/me", headers=auth).json()["id"])


def _site_app(http: httpx.Client, name: str) -> tuple[int, int]:
    site = http.post("/sites/", json={"name": name, "path": f"/{name}"})
    assert site.status_code == 201, site.text
    app = http.post(
        "/apps/", json={"site_id": site.json()["id"], "name": "A", "serialized_class": "x", "source_code": "y"}
    )
    assert app.status_code == 201, app.text
    return int(site.json()["id"]), int(app.json()["id"])


def _create(http: httpx.Client, app_id: int, n: int, prefix: str, **extra: Any) -> list[int]:
    resp = http.post("/jobs/", json=[{"app_id": app_id, "workdir": f"{prefix}/{i}", **extra} for i in range(n)])
    assert resp.status_code == 201, resp.text
    return [int(j["id"]) for j in resp.json()]


def _clients(cluster: Cluster, auth: dict[str, str]) -> list[httpx.Client]:
    return [httpx.Client(base_url=h.base_url, headers=auth, timeout=60) for h in cluster.hosts]


def _log_marks(cluster: Cluster) -> list[int]:
    return [len(h.log()) for h in cluster.hosts] + [len(cluster.bouncer.log())]


def _new_problems(cluster: Cluster, marks: list[int]) -> list[str]:
    texts = [h.log()[m:] for h, m in zip(cluster.hosts, marks, strict=False)] + [cluster.bouncer.log()[marks[-1] :]]
    names = [h.host.name for h in cluster.hosts] + ["pgbouncer"]
    return [
        f"{name}: {line}"
        for name, t in zip(names, texts, strict=True)
        for line in t.splitlines()
        if LOG_PROBLEMS.search(line)
    ]


def _utc(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


# ----------------------------------------------------------------------------------------------- the setting


def test_pgbouncer_refuses_startup_options_which_the_setting_leaves_out(cluster: Cluster) -> None:
    address = cluster.network.pgbouncer_listen[0]
    with pytest.raises(psycopg2.OperationalError, match="unsupported startup parameter: options"):
        psycopg2.connect(cluster.bouncer.url(cluster.database, address), options="-c timezone=UTC")
    conn = psycopg2.connect(cluster.bouncer.url(cluster.database, address))
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW timezone")
            assert cur.fetchone() == (SERVER_TIMEZONE,)  # what the API's connections get through PgBouncer
    finally:
        conn.close()


def test_timestamps_are_utc_whatever_the_server_timezone(cluster: Cluster) -> None:
    auth, _ = _login(cluster.url(0))
    a, b = _clients(cluster, auth)
    with a, b:
        site_id, app_id = _site_app(a, "tz")
        before = datetime.now(UTC)
        [job_id] = _create(b, app_id, 1, "tz")
        session = b.post("/sessions/", json={"site_id": site_id})
        assert session.status_code == 201, session.text
        assert a.put(f"/jobs/{job_id}", json={"state": "PREPROCESSED"}).status_code == 200
        after = datetime.now(UTC)
        slack = timedelta(seconds=5)
        job = a.get(f"/jobs/{job_id}").json()
        assert before - slack <= _utc(job["last_update"]) <= after + slack
        assert before - slack <= _utc(session.json()["heartbeat"]) <= after + slack
        events = b.get("/events/", params={"job_id": job_id}).json()["results"]
        assert events and all(before - slack <= _utc(e["timestamp"]) <= after + slack for e in events)
        # A fresh session is alive: its heartbeat is compared with now in UTC, not in the server's zone.
        sid = session.json()["id"]
        assert b.put(f"/sessions/{sid}").status_code == 200
        assert a.delete(f"/sessions/{sid}").status_code == 204  # the sweep test counts only its own sessions
    with cluster.direct.connect() as conn:
        stored = conn.execute(text("SELECT last_update FROM jobs WHERE id = :id"), {"id": job_id}).scalar_one()
    assert before.replace(tzinfo=None) - slack <= stored <= after.replace(tzinfo=None) + slack


# ----------------------------------------------------------------------------------------------- acquire


def test_eight_acquirers_on_two_hosts_share_5000_jobs(cluster: Cluster) -> None:
    auth, _ = _login(cluster.url(1))
    clients = _clients(cluster, auth)
    try:
        site_id, app_id = _site_app(clients[0], "acq")
        created = []
        for chunk in range(10):  # 5,000 jobs, created half on each host
            created += _create(clients[chunk % 2], app_id, 500, f"acq/{chunk}")
        assert len(set(created)) == 5000
        got: list[list[int]] = [[] for _ in range(8)]
        by_host = [0, 0]
        errors: list[str] = []
        sessions = [int(clients[i % 2].post("/sessions/", json={"site_id": site_id}).json()["id"]) for i in range(8)]
        start = threading.Barrier(8)

        def acquirer(i: int) -> None:
            with httpx.Client(base_url=cluster.url(i % 2), headers=auth, timeout=120) as http:
                start.wait()
                while True:
                    resp = http.post(
                        f"/sessions/{sessions[i]}",
                        json={"max_num_jobs": 40, "filter_tags": {}, "states": ["STAGED_IN"]},
                    )
                    if resp.status_code != 200:
                        errors.append(f"acquirer {i}: HTTP {resp.status_code} {resp.text[:200]}")
                        return
                    ids = [int(j["id"]) for j in resp.json()]
                    if not ids:
                        return
                    got[i] += ids
                    by_host[i % 2] += len(ids)

        threads = [threading.Thread(target=acquirer, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
        assert not errors, errors
        handed_out = [job for ids in got for job in ids]
        assert len(handed_out) == len(set(handed_out)), "a job was handed out twice"
        assert set(handed_out) == set(created), f"{len(set(created) - set(handed_out))} jobs left"
        assert all(by_host), f"jobs handed out per host: {by_host}"
        for i, sid in enumerate(sessions):  # so that the sweep test below counts only its own sessions
            assert clients[i % 2].delete(f"/sessions/{sid}").status_code == 204
    finally:
        for c in clients:
            c.close()


# ----------------------------------------------------------------------------------------------- websocket


def test_websocket_on_host_a_sees_a_patch_sent_to_host_b(cluster: Cluster) -> None:
    auth, user_id = _login(cluster.url(0))
    a, b = _clients(cluster, auth)
    with a, b:
        _, app_id = _site_app(a, "ws")
        [job_id] = _create(a, app_id, 1, "ws")
        ws_url = cluster.url(0).replace("http://", "ws://") + "/subscribe-user"
        with connect(ws_url, open_timeout=10) as ws:
            ws.send(auth["Authorization"].split()[1])
            deadline = time.monotonic() + 10
            while _subscribers(cluster.redis_params, user_id) < 1:
                assert time.monotonic() < deadline, "the websocket did not subscribe"
                time.sleep(0.02)
            started = time.monotonic()
            resp = b.patch("/jobs/", json=[{"id": job_id, "state": "PREPROCESSED"}])
            assert resp.status_code == 200, resp.text
            frame = ws.recv(timeout=1.0)  # raises TimeoutError after 1 s
            assert time.monotonic() - started < 1.0
    message = json.loads(frame)
    assert message["type"] == "event"
    assert [(e["job_id"], e["from_state"], e["to_state"]) for e in message["data"]] == [
        (job_id, "STAGED_IN", "PREPROCESSED")
    ]


# ----------------------------------------------------------------------------------------------- sweeper

_EXPIRED_LINE = re.compile(r"Expired (\d+) session\(s\)")


def test_expired_sessions_are_swept_exactly_once_across_hosts(cluster: Cluster) -> None:
    auth, _ = _login(cluster.url(0))
    clients = _clients(cluster, auth)
    marks = _log_marks(cluster)
    try:
        site_id, app_id = _site_app(clients[0], "sweep")
        _create(clients[1], app_id, 40, "sweep")
        sessions, running = [], []
        for i in range(20):
            http = clients[i % 2]
            sid = int(http.post("/sessions/", json={"site_id": site_id}).json()["id"])
            jobs = [
                int(j["id"])
                for j in http.post(
                    f"/sessions/{sid}", json={"max_num_jobs": 2, "filter_tags": {}, "states": ["STAGED_IN"]}
                ).json()
            ]
            assert len(jobs) == 2
            assert http.patch("/jobs/", json=[{"id": j, "state": "RUNNING"} for j in jobs]).status_code == 200
            sessions.append(sid)
            running += jobs
        with cluster.direct.begin() as conn:
            conn.execute(
                text("UPDATE sessions SET heartbeat = heartbeat - interval '1 hour' WHERE id = ANY(:ids)"),
                {"ids": sessions},
            )
        deadline = time.monotonic() + 30
        while clients[0].get("/sessions/").json()["count"]:
            assert time.monotonic() < deadline, "the sweepers did not expire the sessions"
            time.sleep(0.2)
        time.sleep(2.5)  # two more sweep rounds on every worker: none may expire anything again
        with cluster.direct.connect() as conn:
            timeouts = {
                int(row[0]): int(row[1])
                for row in conn.execute(
                    text(
                        "SELECT job_id, count(*) FROM log_events WHERE job_id = ANY(:ids) AND to_state = 'RUN_TIMEOUT' "
                        "GROUP BY job_id"
                    ),
                    {"ids": running},
                )
            }
        assert timeouts == {job: 1 for job in running}
        per_host = [
            sum(int(n) for n in _EXPIRED_LINE.findall(h.log()[m:])) for h, m in zip(cluster.hosts, marks, strict=False)
        ]
        assert sum(per_host) == len(sessions), per_host
    finally:
        for c in clients:
            c.close()


# ----------------------------------------------------------------------------------------------- migrate


def test_migrate_on_both_hosts_at_once_applies_once(cluster: Cluster, pg: PgEndpoint) -> None:
    fresh = pg.create_database("balsam_mh_migrate")
    holder = pg.connect(fresh)
    try:
        holder.autocommit = False
        with holder.cursor() as cur:  # hold the lock so that both runs are surely under way together
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_KEY,))
        runs = []
        for host in cluster.network.hosts:
            env = {
                "BALSAM_DATABASE_URL": cluster.bouncer.url(fresh, host.pgbouncer_address),
                "BALSAM_DATABASE_PGBOUNCER": "true",  # through PgBouncer in transaction mode, no direct URL
            }
            argv = host.command([sys.executable, "-m", "balsam.cli", "server", "migrate"])
            runs.append(
                subprocess.Popen(
                    argv, env={**os.environ, **env}, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
                )
            )
        watcher = pg.connect(fresh)
        deadline = time.monotonic() + 120
        with watcher.cursor() as cur:
            while True:
                cur.execute(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
                    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
                )
                row = cur.fetchone()
                if row is not None and row[0] == 2:
                    break
                assert all(r.poll() is None for r in runs), [r.communicate() for r in runs]
                assert time.monotonic() < deadline, "the two migrations did not both wait for the lock"
                time.sleep(0.1)
        watcher.close()
        holder.rollback()  # release: one applies the migrations, then the other finds the schema at head
        outputs = [r.communicate(timeout=180) for r in runs]
        assert [r.returncode for r in runs] == [0, 0], outputs
        head = head_revision()
        lines = sorted(out.strip() for out, _ in outputs)
        assert lines == [f"schema already at {head}", f"schema: empty -> {head}"], outputs
        with holder.cursor() as cur:
            cur.execute("SELECT version_num FROM alembic_version")
            assert cur.fetchall() == [(head,)]
        holder.commit()
    finally:
        holder.close()
        pg.drop_database(fresh)


# ----------------------------------------------------------------------------------------------- traffic mix


def test_the_traffic_mix_through_pgbouncer_leaves_no_error_in_any_log(cluster: Cluster) -> None:
    auth, _ = _login(cluster.url(0))
    marks = _log_marks(cluster)
    setup = httpx.Client(base_url=cluster.url(0), headers=auth, timeout=60)
    site_id, app_id = _site_app(setup, "mix")
    setup.close()
    failures: list[str] = []
    counts: dict[str, int] = {}
    lock = threading.Lock()

    def check(resp: httpx.Response, op: str, expected: int = 200) -> httpx.Response:
        with lock:
            counts[op] = counts.get(op, 0) + 1
            if resp.status_code != expected:
                failures.append(f"{op}: HTTP {resp.status_code} {resp.text[:200]}")
        return resp

    def client_loop(n: int) -> None:
        clients = _clients(cluster, auth)
        try:
            sid = int(check(clients[n % 2].post("/sessions/", json={"site_id": site_id}), "session", 201).json()["id"])
            for rnd in range(12):
                a, b = clients[(n + rnd) % 2], clients[(n + rnd + 1) % 2]  # round robin: no stickiness
                tag = f"c{n}r{rnd}"
                specs = [{"app_id": app_id, "workdir": f"mix/{tag}/{i}", "tags": {"t": tag}} for i in range(10)]
                ids = [int(j["id"]) for j in check(a.post("/jobs/", json=specs), "create", 201).json()]
                check(b.patch("/jobs/", json=[{"id": i, "state": "PREPROCESSED"} for i in ids[:5]]), "patch")
                listed = check(a.get("/jobs/", params={"tags": f"t:{tag}", "state": "PREPROCESSED"}), "list").json()
                if listed.get("count") != 5:
                    failures.append(f"list {tag}: {listed.get('count')} jobs, expected 5")
                got = check(b.post(f"/sessions/{sid}", json={"max_num_jobs": 3, "filter_tags": {"t": tag}}), "acquire")
                acquired = [int(j["id"]) for j in got.json()]
                check(a.put(f"/sessions/{sid}"), "tick")
                if acquired:
                    check(b.put(f"/jobs/{acquired[0]}", json={"state": "RUNNING"}), "put")
                check(a.get("/events/", params={"tags": f"t:{tag}"}), "events")
                check(b.delete(f"/jobs/{ids[-1]}"), "delete", 204)
            check(clients[0].delete(f"/sessions/{sid}"), "end session", 204)
        except httpx.HTTPError as exc:
            failures.append(f"client {n}: {type(exc).__name__}: {exc}")
        finally:
            for c in clients:
                c.close()

    threads = [threading.Thread(target=client_loop, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not failures, failures[:10]
    assert counts["create"] == 72 and counts["delete"] == 72 and counts["acquire"] == 72, counts
    time.sleep(0.5)  # let the logs reach their files
    assert not _new_problems(cluster, marks), _new_problems(cluster, marks)[:20]
    # The logs scanned are the real ones: every request is in the hosts' access logs, and the hosts' pools
    # logged in to this database through PgBouncer.
    for host, mark in zip(cluster.hosts, marks, strict=False):
        assert host.log()[mark:].count('"POST /jobs/ HTTP/1.1" 201') >= 30, host.log()[mark:][-2000:]
    assert f"login attempt: db={cluster.database} user={cluster.bouncer.pg.user}" in cluster.bouncer.log()


# ----------------------------------------------------------------------------------------------- failover


@dataclass
class Writers:
    """Clients that create a job and then change its state, one write at a time, round robin over the hosts
    (no stickiness); a write that fails on one host is sent again to the other until one acknowledges it."""

    cluster: Cluster
    auth: dict[str, str]
    app_id: int
    threads_count: int = 4
    stop: threading.Event = field(default_factory=threading.Event)
    created: dict[str, int] = field(default_factory=dict)  # acknowledged: workdir -> job id
    updated: set[int] = field(default_factory=set)  # acknowledged: job set to PREPROCESSED
    failovers: list[str] = field(default_factory=list)
    acks_by_host: list[int] = field(default_factory=lambda: [0, 0])
    lock: threading.Lock = field(default_factory=threading.Lock)
    threads: list[threading.Thread] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def _send(self, clients: list[httpx.Client], first: int, method: str, path: str, body: Any) -> tuple[int, Any]:
        host = first
        for _ in range(400):
            try:
                resp = clients[host].request(method, path, json=body)
                if resp.status_code < 500:
                    assert resp.status_code in (200, 201), resp.text
                    return host, resp.json()
                reason = f"HTTP {resp.status_code}"
            except httpx.HTTPError as exc:
                reason = type(exc).__name__
            with self.lock:
                self.failovers.append(f"{time.monotonic():.2f} host-{host} {method} {path}: {reason}")
            host = 1 - host
            time.sleep(0.05)
        raise AssertionError(f"no host acknowledged {method} {path}")

    def _run(self, n: int) -> None:
        try:
            self._write(n)
        except Exception as exc:
            self.errors.append(f"writer {n}: {type(exc).__name__}: {exc}")

    def _write(self, n: int) -> None:
        clients = [httpx.Client(base_url=h.base_url, headers=self.auth, timeout=30) for h in self.cluster.hosts]
        try:
            i = 0
            while not self.stop.is_set():
                workdir = f"fail/{n}/{i}"
                host, body = self._send(clients, i % 2, "POST", "/jobs/", [{"app_id": self.app_id, "workdir": workdir}])
                job_id = int(body[0]["id"])
                with self.lock:
                    self.created[workdir] = job_id
                    self.acks_by_host[host] += 1
                host, _ = self._send(clients, (i + 1) % 2, "PUT", f"/jobs/{job_id}", {"state": "PREPROCESSED"})
                with self.lock:
                    self.updated.add(job_id)
                    self.acks_by_host[host] += 1
                i += 1
        finally:
            for c in clients:
                c.close()

    def __enter__(self) -> Writers:
        self.threads = [threading.Thread(target=self._run, args=(n,), daemon=True) for n in range(self.threads_count)]
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(120)

    def lost(self) -> list[str]:
        """Acknowledged writes the database does not have."""
        with self.cluster.direct.connect() as conn:
            rows = {
                int(row[0]): str(row[1])
                for row in conn.execute(
                    text("SELECT id, state FROM jobs WHERE id = ANY(:ids)"), {"ids": list(self.created.values())}
                )
            }
        missing = [f"created {w} (job {j})" for w, j in self.created.items() if j not in rows]
        return missing + [f"update of job {j}" for j in self.updated if rows.get(j) != "PREPROCESSED"]


def _writers(cluster: Cluster) -> Writers:
    auth, _ = _login(cluster.url(0))
    with httpx.Client(base_url=cluster.url(0), headers=auth, timeout=60) as http:
        _, app_id = _site_app(http, "fail")
    return Writers(cluster, auth, app_id)


def test_a_host_reloaded_with_hup_while_the_other_serves_loses_no_write(cluster: Cluster) -> None:
    writers = _writers(cluster)
    with writers:
        time.sleep(2)
        cluster.hosts[0].hup()
        time.sleep(2)
    assert not writers.errors, writers.errors
    assert writers.created and writers.acks_by_host[0] and writers.acks_by_host[1]
    assert not writers.lost()
    print(f"HUP: {len(writers.created)} jobs created, {len(writers.failovers)} failovers")


def test_a_host_killed_and_restarted_while_the_other_serves_loses_no_write(cluster: Cluster) -> None:
    writers = _writers(cluster)
    victim = cluster.hosts[1]
    with writers:
        time.sleep(2)
        killed_at = time.monotonic()
        victim.kill()  # master and workers, SIGKILL
        time.sleep(2)
        with writers.lock:
            acks_before_restart = writers.acks_by_host[1]
        victim.restart()
        time.sleep(2)
    assert not writers.errors, writers.errors
    assert time.monotonic() - killed_at > 4
    failed_on_victim = [f for f in writers.failovers if " host-1 " in f]
    assert failed_on_victim, "no client had to fail over: the kill went unnoticed"
    assert writers.acks_by_host[1] > acks_before_restart, "the restarted host served no write"
    assert not writers.lost()
    print(
        f"kill: {len(writers.created)} jobs created, {len(writers.failovers)} failovers, e.g. {writers.failovers[:3]}"
    )
