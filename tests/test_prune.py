"""`balsam server prune` (balsam.server.ops.prune): old rows go, new rows and unfinished jobs stay, children of
pruned parents are fine, rows the API holds are skipped, one prune at a time, and the API keeps answering
during a prune of 100,000 events."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text

from balsam.server.clock import utcnow
from balsam.server.ops.prune import PRUNE_LOCK_KEY, Plan, prune
from tests.ops_helpers import ROOT, run_cli
from tests.serving import gunicorn
from tests.sessions_helpers import insert_job, make_app, make_site

OLD = utcnow() - timedelta(days=40)


def _events(engine: Engine, job_id: int, count: int, when: Any) -> None:
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO log_events (job_id, timestamp, from_state, to_state) "
                "SELECT :job, :when, 'CREATED', 'READY' FROM generate_series(1, :n)"
            ),
            {"job": job_id, "when": when, "n": count},
        )


def _count(engine: Engine, sql: str, **params: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(sql), params).scalar_one())


def _transfer(engine: Engine, job_id: int) -> None:
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO transfer_items (job_id, direction, local_path, remote_path, location_alias, state) "
                "VALUES (:job, 'in', 'a', 'b', 'laptop', 'done')"
            ),
            {"job": job_id},
        )


def _jobs(engine: Engine) -> set[int]:
    with engine.connect() as conn:
        return set(conn.execute(text("SELECT id FROM jobs")).scalars())


def test_prune_keeps_what_it_must(make_user: Callable[[str], TestClient], engine: Engine, database_url: str) -> None:
    user = make_user("pruned")
    app = make_app(user, make_site(user))
    old_done = insert_job(engine, app, state="JOB_FINISHED", last_update=OLD)
    _events(engine, old_done, 3, OLD)
    _transfer(engine, old_done)
    new_done = insert_job(engine, app, state="JOB_FINISHED")
    _events(engine, new_done, 2, utcnow())
    old_running = insert_job(engine, app, state="RUNNING", last_update=OLD)
    _events(engine, old_running, 4, OLD)
    _events(engine, old_running, 1, utcnow())
    old_failed = insert_job(engine, app, state="FAILED", last_update=OLD)
    # A finished parent whose child has moved on, a failed parent that a child still awaits, and a finished
    # parent that a child awaits together with an unfinished one.
    parent = insert_job(engine, app, state="JOB_FINISHED", last_update=OLD)
    child = insert_job(engine, app, state="STAGED_IN", parent_ids=[parent])
    failed_parent = insert_job(engine, app, state="FAILED", last_update=OLD)
    waiting = insert_job(engine, app, state="AWAITING_PARENTS", parent_ids=[failed_parent])
    done_parent = insert_job(engine, app, state="JOB_FINISHED", last_update=OLD)
    running_parent = insert_job(engine, app, state="RUNNING")
    both = insert_job(engine, app, state="AWAITING_PARENTS", parent_ids=[done_parent, running_parent])
    env = {"BALSAM_DATABASE_URL": database_url}
    args = ["prune", "--events-older-than", "30", "--jobs-older-than", "30", "--job-state", "JOB_FINISHED"]
    args += ["--job-state", "FAILED"]

    everything = _jobs(engine), _count(engine, "SELECT count(*) FROM log_events")
    dry = run_cli(*args, "--dry-run", env=env)
    assert dry.returncode == 0, dry.stderr
    assert "would delete 3 jobs (JOB_FINISHED, FAILED)" in dry.stdout
    assert "with their 3 events and 1 transfer items" in dry.stdout
    assert "would delete 4 events from before" in dry.stdout
    assert "would keep 2 such jobs" in dry.stdout
    assert (_jobs(engine), _count(engine, "SELECT count(*) FROM log_events")) == everything, "a dry run deletes nothing"

    result = run_cli(*args, env=env)
    assert result.returncode == 0, result.stderr
    assert "deleted 3 jobs" in result.stdout and "deleted 4 events" in result.stdout
    assert "pruning:" not in result.stdout, "no progress line when stdout is not a terminal"
    assert _jobs(engine) == {new_done, old_running, child, failed_parent, waiting, done_parent, running_parent, both}
    assert old_failed not in _jobs(engine) and parent not in _jobs(engine)
    assert _count(engine, "SELECT count(*) FROM transfer_items") == 0
    assert _count(engine, "SELECT count(*) FROM log_events WHERE job_id = :j", j=new_done) == 2
    assert _count(engine, "SELECT count(*) FROM log_events WHERE job_id = :j", j=old_running) == 1

    # The child of a pruned parent reads and updates as before; its parent_ids keep the id.
    got = user.get(f"/jobs/{child}")
    assert got.status_code == 200 and got.json()["parent_ids"] == [parent]
    assert user.put(f"/jobs/{child}", json={"state": "RUNNING"}).status_code == 200
    assert user.get("/jobs/", params={"parent_id": parent}).json()["count"] == 1
    # The child still waiting for a failed parent still waits: pruning did not release it.
    assert user.get(f"/jobs/{waiting}").json()["state"] == "AWAITING_PARENTS"
    # When its other parent finishes, the child is released; then its finished parent may go.
    assert user.put(f"/jobs/{running_parent}", json={"state": "JOB_FINISHED"}).status_code == 200
    assert user.get(f"/jobs/{both}").json()["state"] in {"READY", "STAGED_IN"}
    assert run_cli("prune", "--jobs-older-than", "30", env=env).returncode == 0
    assert done_parent not in _jobs(engine) and user.get(f"/jobs/{both}").status_code == 200


def test_rows_the_api_holds_are_skipped_without_waiting(
    make_user: Callable[[str], TestClient], engine: Engine, database_url: str
) -> None:
    user = make_user("holder")
    app = make_app(user, make_site(user))
    held, free = (insert_job(engine, app, state="JOB_FINISHED", last_update=OLD) for _ in range(2))
    _events(engine, held, 2, OLD)
    _events(engine, free, 2, OLD)
    _transfer(engine, free)
    plan = Plan.from_days(30, 30, ["JOB_FINISHED"], 100, utcnow())
    own = create_engine(database_url)
    holder = create_engine(database_url)
    try:
        with holder.connect() as conn:
            conn.execute(text("SELECT 1 FROM jobs WHERE id = :j FOR UPDATE"), {"j": held})  # a request mid-update
            outcome: list[Any] = []
            worker = threading.Thread(target=lambda: outcome.append(prune(own, plan)))
            worker.start()
            worker.join(60)
            assert not worker.is_alive(), "prune waited for a row lock"
            conn.rollback()
    finally:
        own.dispose()
        holder.dispose()
    (counts,) = outcome
    assert (counts.jobs, counts.job_events, counts.transfer_items) == (1, 2, 1)
    assert _jobs(engine) == {held}
    # The held job's old events are not locked by the API: they go as old events.
    assert counts.events == 2 and _count(engine, "SELECT count(*) FROM log_events") == 0


def test_one_prune_at_a_time_and_progress_on_a_terminal(
    make_user: Callable[[str], TestClient], engine: Engine, database_url: str
) -> None:
    user = make_user("terminal")
    app = make_app(user, make_site(user))
    _events(engine, insert_job(engine, app, state="RUNNING"), 50, OLD)
    env = {**os.environ, "BALSAM_DATABASE_URL": database_url}
    with engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": PRUNE_LOCK_KEY})  # another prune is running
        busy = run_cli("prune", "--events-older-than", "30", env={"BALSAM_DATABASE_URL": database_url})
        conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": PRUNE_LOCK_KEY})
        conn.commit()
    assert busy.returncode == 0 and "another `balsam server prune` is running" in busy.stderr
    assert _count(engine, "SELECT count(*) FROM log_events") == 50

    leader, follower = pty.openpty()
    with subprocess.Popen(
        [sys.executable, "-m", "balsam.cli", "server", "prune", "--events-older-than", "30", "--batch-size", "10"],
        stdout=follower,
        stderr=subprocess.PIPE,
        env=env,
        cwd=ROOT,
    ) as proc:
        os.close(follower)
        output = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:
                break
            if not chunk:
                break
            output += chunk
        assert proc.wait(120) == 0
    os.close(leader)
    shown = output.decode()
    assert "\rpruning: 0 jobs (0 events, 0 transfer items), 10 older events deleted" in shown
    assert "50 older events deleted" in shown and "deleted 50 events" in shown


@pytest.mark.serving
def test_the_api_keeps_answering_during_a_prune_of_100000_events(
    server_env: dict[str, str], engine: Engine, tmp_path: Path
) -> None:
    with (
        gunicorn(server_env, tmp_path, workers=2) as server,
        httpx.Client(base_url=server.base_url, timeout=60) as http,
    ):
        assert http.post("/auth/password/register", json={"username": "busy", "password": "pw"}).status_code == 201
        token = http.post("/auth/password/login", data={"username": "busy", "password": "pw"}).json()["access_token"]
        http.headers["Authorization"] = f"Bearer {token}"
        site = http.post("/sites/", json={"name": "s", "path": "/s"}).json()["id"]
        app = http.post("/apps/", json={"site_id": site, "name": "A", "serialized_class": "x", "source_code": "y"})
        jobs = [insert_job(engine, app.json()["id"], state="RUNNING") for _ in range(20)]
        with engine.begin() as conn:  # 100,000 old events, 5,000 per job
            conn.execute(
                text(
                    "INSERT INTO log_events (job_id, timestamp, from_state, to_state) "
                    "SELECT j, :old - make_interval(secs => n), 'READY', 'RUNNING' "
                    "FROM unnest(CAST(:jobs AS bigint[])) AS j, generate_series(1, 5000) AS n"
                ),
                {"old": OLD, "jobs": jobs},
            )
        assert _count(engine, "SELECT count(*) FROM log_events") == 100_000

        failures: list[str] = []
        answered = 0
        stop = threading.Event()

        def use_the_api() -> None:
            nonlocal answered
            states = ["RUN_DONE", "RUNNING"]
            while not stop.is_set():
                for method, path, body in (
                    ("GET", "/jobs/", None),
                    ("GET", "/events/?limit=10", None),
                    ("PATCH", "/jobs/", [{"id": jobs[answered % 20], "state": states[answered % 2]}]),
                ):
                    try:
                        resp = http.request(method, path, json=body)
                        if resp.status_code != 200:
                            failures.append(f"{method} {path}: {resp.status_code} {resp.text[:200]}")
                    except httpx.HTTPError as exc:
                        failures.append(f"{method} {path}: {exc!r}")
                    answered += 1

        load = threading.Thread(target=use_the_api)
        load.start()
        try:
            started = time.monotonic()
            result = run_cli(
                "prune",
                "--events-older-than",
                "30",
                "--batch-size",
                "1000",
                env={"BALSAM_DATABASE_URL": server_env["BALSAM_DATABASE_URL"]},
            )
            took = time.monotonic() - started
        finally:
            stop.set()
            load.join(120)
        assert result.returncode == 0, result.stderr
        assert "deleted 100,000 events" in result.stdout
        print(f"prune of 100,000 events: {took:.1f} s, {answered} API requests meanwhile")
        assert failures == []
        assert answered >= 30, f"only {answered} requests in {took:.1f} s of pruning"
        # The events the requests made during the prune are new: they stay.
        assert (
            _count(engine, "SELECT count(*) FROM log_events WHERE timestamp < :cut", cut=utcnow() - timedelta(days=30))
            == 0
        )
        assert _count(engine, "SELECT count(*) FROM log_events") > 0
