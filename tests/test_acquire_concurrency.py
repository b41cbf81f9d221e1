"""Concurrent acquirers (spec §8 "Concurrency guarantee"): 8 threads, each with its own session and its
own database connection, drain 5,000 jobs. Every job is acquired exactly once."""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, insert, select, text

from balsam.server.crud import sessions as crud
from balsam.server.db.engine import get_sessionmaker
from balsam.server.db.tables import Job, JobLease
from balsam.server.schemas.sessions import SessionAcquire
from tests.sessions_helpers import insert_jobs, make_app, make_session, make_site

N_JOBS = 5000
N_WORKERS = 8


def test_eight_concurrent_acquirers_over_5000_jobs(make_user: Callable[[str], TestClient], engine: Engine) -> None:
    alice = make_user("alice")
    site_id = make_site(alice)
    app_id = make_app(alice, site_id)
    # A mix of footprints, so the MPI-mode acquirers lock rows they then leave for others.
    all_ids: list[int] = []
    for num_nodes, packing in ((1, 1), (1, 4), (2, 1), (4, 2)):
        all_ids += insert_jobs(engine, app_id, N_JOBS // 4, num_nodes=num_nodes, node_packing_count=packing)
    user_id = int(alice.get("/auth/password/me").json()["id"])
    session_ids = [make_session(alice, site_id) for _ in range(N_WORKERS)]

    results: dict[int, list[int]] = {sid: [] for sid in session_ids}
    errors: list[BaseException] = []
    start = threading.Barrier(N_WORKERS)

    def worker(index: int, session_id: int) -> None:
        rng = random.Random(index)
        maker = get_sessionmaker()
        try:
            start.wait()
            for _ in range(10_000):
                spec = SessionAcquire(
                    max_num_jobs=rng.randint(20, 300),
                    filter_tags={},
                    # Half the workers use the MPI path with a node cap.
                    max_aggregate_nodes=float(rng.randint(5, 200)) if index % 2 else None,
                )
                with maker() as db, db.begin():
                    outcome = crud.acquire(db, user_id, session_id, spec, crud.utcnow(), 300)
                got = [job["id"] for job in json.loads(outcome.jobs_json)]
                assert all(job["session_id"] == session_id for job in json.loads(outcome.jobs_json))
                results[session_id].extend(got)
                if not got:
                    with maker() as db:
                        left = db.scalar(select(func.count()).where(Job.app_id == app_id, Job.session_id.is_(None)))
                    if left == 0:
                        return
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i, sid)) for i, sid in enumerate(session_ids)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not any(t.is_alive() for t in threads)
    assert errors == []

    acquired = [job_id for ids in results.values() for job_id in ids]
    duplicates = [job_id for job_id, n in Counter(acquired).items() if n > 1]
    assert duplicates == []
    assert sorted(acquired) == sorted(all_ids)  # none left behind
    # Several workers took part, and the database agrees with what each one was told.
    assert sum(1 for ids in results.values() if ids) >= 2
    with engine.connect() as conn:
        holders: dict[int, int | None] = {
            row.id: row.session_id for row in conn.execute(select(Job.id, Job.session_id).where(Job.app_id == app_id))
        }
    for session_id, ids in results.items():
        assert all(holders[job_id] == session_id for job_id in ids)


@pytest.mark.parametrize("mpi", [False, True], ids=["serial", "mpi"])
def test_acquire_takes_other_jobs_when_its_candidates_are_leased_during_its_statement(
    make_user: Callable[[str], TestClient], engine: Engine, mpi: bool
) -> None:
    """Another session leases the first 10 jobs and commits while this acquire's statement runs (after its
    snapshot, before its lease insert): the acquire hands out 10 other free jobs, not an empty batch."""
    alice = make_user("alice")
    site_id = make_site(alice)
    ids = insert_jobs(engine, make_app(alice, site_id), 30)
    user_id = int(alice.get("/auth/password/me").json()["id"])
    other_session, session_id = make_session(alice, site_id), make_session(alice, site_id)
    spec = SessionAcquire(max_num_jobs=10, filter_tags={}, max_aggregate_nodes=1e9 if mpi else None)
    got: list[list[int]] = []
    errors: list[BaseException] = []

    def acquire() -> None:
        try:
            with get_sessionmaker()() as db, db.begin():
                outcome = crud.acquire(db, user_id, session_id, spec, crud.utcnow(), 300)
            got.append([job["id"] for job in json.loads(outcome.jobs_json)])
        except BaseException as exc:
            errors.append(exc)

    with engine.connect() as other:
        # The other session's leases, inserted but not committed: invisible to the acquire's snapshot, so the
        # acquire locks those 10 jobs and its lease insert waits for the other transaction, which then commits.
        # That is the state of the real race (a lease committed after the acquire's snapshot, on a job row the
        # acquire could lock). In the real race the other acquire commits before this one locks the row; here
        # the foreign key's check is switched off for the other transaction (replica role), or its key-share
        # lock on the job rows would make this acquire skip them instead.
        other_tx = other.begin()
        other.execute(text("SET LOCAL session_replication_role = replica"))
        other.execute(insert(JobLease), [{"job_id": j, "session_id": other_session} for j in ids[:10]])
        thread = threading.Thread(target=acquire)
        thread.start()
        waiting = text(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND query LIKE '%job_leases%' AND pid <> pg_backend_pid()"
        )
        deadline = time.monotonic() + 60
        while True:
            with engine.connect() as probe:  # a new transaction each time: pg_stat_activity is read once per one
                if probe.scalar(waiting):
                    break
            assert time.monotonic() < deadline and thread.is_alive(), errors
            time.sleep(0.05)
        other_tx.commit()
    thread.join(60)
    assert errors == []
    assert got == [ids[10:20]]
    with engine.connect() as conn:
        holders = dict(conn.execute(select(JobLease.job_id, JobLease.session_id)).tuples().all())
    assert holders == {**{j: other_session for j in ids[:10]}, **{j: session_id for j in ids[10:20]}}
