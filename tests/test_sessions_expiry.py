"""Lease expiry (spec §8 "Heartbeat and expiry", §12.15, §12.16): the sweeper, its advisory lock, finished
batch jobs, expired sessions on tick/acquire, and the background sweep in a real gunicorn."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import httpx
import redis
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select, text, update

from balsam.server.crud.sessions import EXPIRED_MESSAGE, utcnow
from balsam.server.db.engine import get_sessionmaker
from balsam.server.db.tables import Job, Session
from balsam.server.pubsub import get_publisher, user_channel
from balsam.server.sweeper import SWEEP_LOCK_KEY, SessionSweeper, sweep_expired
from tests.conftest import TEST_SECRET
from tests.serving import gunicorn
from tests.sessions_helpers import (
    acquire,
    events_of,
    ids_of,
    insert_batch_job,
    insert_jobs,
    job_rows,
    make_app,
    make_session,
    make_site,
    set_batch_job_state,
)


def _set_running(engine: Engine, ids: list[int]) -> None:
    with engine.begin() as conn:
        conn.execute(update(Job).where(Job.id.in_(ids)).values(state="RUNNING"))


def _age_session(engine: Engine, session_id: int, seconds: float) -> None:
    with engine.begin() as conn:
        conn.execute(
            update(Session).where(Session.id == session_id).values(heartbeat=utcnow() - timedelta(seconds=seconds))
        )


def _session_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(Session)) or 0)


def test_sweep_times_out_running_jobs_of_stale_sessions_only(
    make_user: Callable[[str], TestClient], engine: Engine, redis_params: dict[str, str]
) -> None:
    alice = make_user("alice")
    user_id = int(alice.get("/auth/password/me").json()["id"])
    site_id = make_site(alice)
    app_id = make_app(alice, site_id)
    stale_jobs = insert_jobs(engine, app_id, 4)
    stale = make_session(alice, site_id)
    assert ids_of(acquire(alice, stale)) == stale_jobs
    live_jobs = insert_jobs(engine, app_id, 2)
    live = make_session(alice, site_id)
    assert ids_of(acquire(alice, live)) == live_jobs
    _set_running(engine, [*stale_jobs[:2], *live_jobs])
    _age_session(engine, stale, 301)

    listener = redis.Redis(unix_socket_path=redis_params["unix_socket_path"]).pubsub()
    listener.subscribe(user_channel(user_id))
    assert listener.get_message(timeout=2) is not None  # the subscribe confirmation

    sweeper = SessionSweeper(lambda: get_sessionmaker()(), get_publisher, expiry_seconds=300, interval=60)
    result = sweeper.sweep_once()
    assert result is not None and result.session_ids == [stale] and result.event_count == 2

    rows = job_rows(engine)
    # (a) RUNNING -> RUN_TIMEOUT with the event; (b) the rest released in their state.
    assert [rows[j]["state"] for j in stale_jobs] == ["RUN_TIMEOUT", "RUN_TIMEOUT", "PREPROCESSED", "PREPROCESSED"]
    assert all(rows[j]["session_id"] is None for j in stale_jobs)
    # The live session is untouched.
    assert all(rows[j]["session_id"] == live and rows[j]["state"] == "RUNNING" for j in live_jobs)
    events = events_of(engine, stale_jobs)
    assert [(e["job_id"], e["to_state"], e["data"]) for e in events] == [
        (j, "RUN_TIMEOUT", {"message": EXPIRED_MESSAGE}) for j in stale_jobs[:2]
    ]
    assert [s["id"] for s in alice.get("/sessions/").json()["results"]] == [live]

    # The events went to the owner's channel, after the commit.
    message = listener.get_message(timeout=2)
    assert message is not None and message["type"] == "message"
    payload = json.loads(message["data"])
    assert payload["action"] == "bulk-create" and payload["type"] == "event"
    assert sorted(e["job_id"] for e in payload["data"]) == stale_jobs[:2]
    listener.close()

    # A tick or acquire on the swept session is 404; the jobs are acquirable again by a new session:
    # the runnable ones by a launcher, the timed-out ones by a processing service.
    assert alice.put(f"/sessions/{stale}").status_code == 404
    assert alice.post(f"/sessions/{stale}", json={"max_num_jobs": 5, "filter_tags": {}}).status_code == 404
    fresh = make_session(alice, site_id)
    assert ids_of(acquire(alice, fresh)) == stale_jobs[2:]
    assert ids_of(acquire(alice, fresh, states=["RUN_TIMEOUT"])) == stale_jobs[:2]
    # Nothing left to sweep.
    again = sweep_expired(lambda: get_sessionmaker()(), expiry_seconds=300)
    assert again is not None and again.session_ids == []


def test_sweep_with_a_fake_clock(make_user: Callable[[str], TestClient], engine: Engine) -> None:
    alice = make_user("alice")
    site_id = make_site(alice)
    app_id = make_app(alice, site_id)
    jobs = insert_jobs(engine, app_id, 3)
    sid = make_session(alice, site_id)
    acquire(alice, sid)
    _set_running(engine, jobs)
    factory = get_sessionmaker()
    # Ticked just now: not expired 299 s later, expired 300 s later (heartbeat <= now - expiry).
    soon = sweep_expired(factory, expiry_seconds=300, now=utcnow() + timedelta(seconds=299))
    assert soon is not None and soon.session_ids == []
    later = sweep_expired(factory, expiry_seconds=300, now=utcnow() + timedelta(seconds=301))
    assert later is not None and later.session_ids == [sid]
    assert {r["state"] for r in job_rows(engine, jobs).values()} == {"RUN_TIMEOUT"}


def test_finished_batch_job_expires_its_sessions(make_user: Callable[[str], TestClient], engine: Engine) -> None:
    alice = make_user("alice")
    site_id = make_site(alice)
    app_id = make_app(alice, site_id)
    jobs = insert_jobs(engine, app_id, 2)
    bj = insert_batch_job(engine, site_id, state="running")
    sid = make_session(alice, site_id, bj)
    assert ids_of(acquire(alice, sid)) == jobs
    _set_running(engine, jobs[:1])
    set_batch_job_state(engine, bj, "finished")
    # Even before a sweep, the session's own tick sees the lease is over: 404, and the jobs are timed out.
    assert alice.put(f"/sessions/{sid}").status_code == 404
    rows = job_rows(engine, jobs)
    assert [rows[j]["state"] for j in jobs] == ["RUN_TIMEOUT", "PREPROCESSED"]
    assert all(r["session_id"] is None for r in rows.values())
    # And the sweeper expires the sessions of a finished batch job too.
    sid2 = make_session(alice, site_id, bj)
    result = sweep_expired(lambda: get_sessionmaker()(), expiry_seconds=300)
    assert result is not None and result.session_ids == [sid2]


def test_acquire_on_expired_unswept_session_is_404(make_user: Callable[[str], TestClient], engine: Engine) -> None:
    alice = make_user("alice")
    site_id = make_site(alice)
    app_id = make_app(alice, site_id)
    held = insert_jobs(engine, app_id, 2)
    sid = make_session(alice, site_id)
    acquire(alice, sid)
    _set_running(engine, held)
    insert_jobs(engine, app_id, 2)
    _age_session(engine, sid, 400)
    resp = alice.post(f"/sessions/{sid}", json={"max_num_jobs": 10, "filter_tags": {}})
    assert resp.status_code == 404
    assert _session_count(engine) == 0
    rows = job_rows(engine)
    assert all(r["session_id"] is None for r in rows.values())
    assert [rows[j]["state"] for j in held] == ["RUN_TIMEOUT", "RUN_TIMEOUT"]


def test_only_one_process_sweeps_at_a_time(make_user: Callable[[str], TestClient], engine: Engine) -> None:
    alice = make_user("alice")
    sid = make_session(alice, make_site(alice))
    _age_session(engine, sid, 1000)
    factory = get_sessionmaker()
    with engine.connect() as other:
        # Another process is sweeping: this one skips the round and touches nothing.
        with other.begin():
            assert other.scalar(select(func.pg_try_advisory_xact_lock(SWEEP_LOCK_KEY))) is True
            assert sweep_expired(factory, expiry_seconds=300) is None
            assert _session_count(engine) == 1
        result = sweep_expired(factory, expiry_seconds=300)
        assert result is not None and result.session_ids == [sid]


def test_sweep_skips_a_session_busy_in_a_request(make_user: Callable[[str], TestClient], engine: Engine) -> None:
    """An acquire or DELETE holds the session row: the sweep leaves it (no FK race, spec §12.15)."""
    alice = make_user("alice")
    sid = make_session(alice, make_site(alice))
    _age_session(engine, sid, 1000)
    factory = get_sessionmaker()
    with engine.connect() as other, other.begin():
        other.execute(select(Session.id).where(Session.id == sid).with_for_update())
        skipped = sweep_expired(factory, expiry_seconds=300)
        assert skipped is not None and skipped.session_ids == []
    swept = sweep_expired(factory, expiry_seconds=300)
    assert swept is not None and swept.session_ids == [sid]


def test_sweep_works_in_batches(make_user: Callable[[str], TestClient], engine: Engine) -> None:
    alice = make_user("alice")
    site_id = make_site(alice)
    sids = [make_session(alice, site_id) for _ in range(7)]
    with engine.begin() as conn:
        conn.execute(text("UPDATE sessions SET heartbeat = heartbeat - interval '1 hour'"))
    result = sweep_expired(lambda: get_sessionmaker()(), expiry_seconds=300, batch_size=3)
    assert result is not None and sorted(result.session_ids) == sids
    assert _session_count(engine) == 0


def test_background_sweeper_in_gunicorn(
    database_url: str, redis_params: dict[str, str], engine: Engine, tmp_path: Path
) -> None:
    """Two workers, a 2 s lease and a 1 s sweep: an abandoned session is expired with nobody calling."""
    env = {
        "BALSAM_DATABASE_URL": database_url,
        "BALSAM_AUTH_SECRET_KEY": TEST_SECRET,
        "BALSAM_REDIS_PARAMS": json.dumps(redis_params),
        "BALSAM_SESSION_EXPIRY_SECONDS": "2",
        "BALSAM_SESSION_SWEEP_INTERVAL_SECONDS": "1",
    }
    with gunicorn(env, tmp_path, workers=2) as server, httpx.Client(base_url=server.base_url, timeout=10) as http:
        assert http.post("/auth/password/register", json={"username": "u", "password": "pw"}).status_code == 201
        token = http.post("/auth/password/login", data={"username": "u", "password": "pw"}).json()["access_token"]
        http.headers["Authorization"] = f"Bearer {token}"
        site_id = http.post("/sites/", json={"name": "s", "path": "/s"}).json()["id"]
        app_id = http.post(
            "/apps/", json={"site_id": site_id, "name": "A", "serialized_class": "x", "source_code": "y"}
        ).json()["id"]
        jobs = insert_jobs(engine, app_id, 3)
        sid = http.post("/sessions/", json={"site_id": site_id}).json()["id"]
        got = http.post(f"/sessions/{sid}", json={"max_num_jobs": 10, "filter_tags": {}}).json()
        assert [j["id"] for j in got] == jobs
        _set_running(engine, jobs[:1])
        # Ticking keeps the lease alive past the expiry time...
        for _ in range(3):
            time.sleep(1)
            assert http.put(f"/sessions/{sid}").status_code == 200
        # ...and once the launcher goes silent, the server expires it on its own.
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and http.get("/sessions/").json()["count"]:
            time.sleep(0.2)
        assert http.get("/sessions/").json()["count"] == 0
        rows = job_rows(engine, jobs)
        assert [rows[j]["state"] for j in jobs] == ["RUN_TIMEOUT", "PREPROCESSED", "PREPROCESSED"]
        assert all(r["session_id"] is None for r in rows.values())
        assert len(events_of(engine, jobs[:1])) == 1
