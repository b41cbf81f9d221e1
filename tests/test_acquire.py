"""Acquire (spec §8 steps 1-5, §14.6, §14.7): every request field, MPI ordering and the reply shape."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from balsam.server.schemas.jobs import JOB_OUT_FIELDS
from tests.sessions_helpers import (
    acquire,
    ids_of,
    insert_batch_job,
    insert_job,
    insert_jobs,
    job_rows,
    make_app,
    make_session,
    make_site,
)


def test_acquire_reply_is_full_job_with_lock_and_batch_job(
    make_user: Callable[[str], TestClient], engine: Engine
) -> None:
    alice = make_user("alice")
    site_id = make_site(alice)
    app_id = make_app(alice, site_id)
    jobs = insert_jobs(engine, app_id, 3, tags={"k": "v"})
    bj = insert_batch_job(engine, site_id)
    sid = make_session(alice, site_id, bj)
    before = alice.get("/sessions/").json()["results"][0]["heartbeat"]
    got = acquire(alice, sid, max_num_jobs=10)
    assert ids_of(got) == jobs  # serial mode: id order
    for job in got:
        assert tuple(job) == JOB_OUT_FIELDS
        assert job["session_id"] == sid and job["batch_job_id"] == bj
        assert job["tags"] == {"k": "v"} and job["data"] == {} and job["launch_params"] == {}
        assert job["last_update"].endswith("+00:00")  # the one aware timestamp (spec §14.11)
    # Acquiring is a heartbeat.
    assert alice.get("/sessions/").json()["results"][0]["heartbeat"] > before
    rows = job_rows(engine, jobs)
    assert all(r["session_id"] == sid and r["batch_job_id"] == bj for r in rows.values())
    # Held jobs are not handed out again, to this or another session.
    assert acquire(alice, sid) == []
    assert acquire(alice, make_session(alice, site_id)) == []


def test_session_without_batch_job_keeps_job_batch_job_id(
    make_user: Callable[[str], TestClient], engine: Engine
) -> None:
    alice = make_user("alice")
    site_id = make_site(alice)
    app_id = make_app(alice, site_id)
    bj = insert_batch_job(engine, site_id)
    job = insert_job(engine, app_id, batch_job_id=bj)
    sid = make_session(alice, site_id)
    [got] = acquire(alice, sid)
    assert got["id"] == job and got["session_id"] == sid and got["batch_job_id"] == bj


def test_acquire_validation(make_user: Callable[[str], TestClient]) -> None:
    alice = make_user("alice")
    sid = make_session(alice, make_site(alice))
    url = f"/sessions/{sid}"
    assert alice.post(url, json={"max_num_jobs": 0, "filter_tags": {}}).status_code == 422
    assert alice.post(url, json={"max_num_jobs": 2049, "filter_tags": {}}).status_code == 422
    assert alice.post(url, json={"max_num_jobs": 2048, "filter_tags": {}}).status_code == 200
    assert alice.post(url, json={"max_num_jobs": 5}).status_code == 422  # filter_tags is required
    assert alice.post(url, json={"filter_tags": {}}).status_code == 422
    bad_state = alice.post(url, json={"max_num_jobs": 5, "filter_tags": {}, "states": ["NOPE"]})
    assert bad_state.status_code == 422
    assert alice.post(url, json={"max_num_jobs": 5, "filter_tags": {"a": {"b": 1}}}).status_code == 422
    # Unknown fields are ignored.
    assert alice.post(url, json={"max_num_jobs": 5, "filter_tags": {}, "extra": 1}).status_code == 200


def test_acquire_filters(make_user: Callable[[str], TestClient], engine: Engine) -> None:
    alice = make_user("alice")
    site_id = make_site(alice)
    other_site = make_site(alice, "other")
    app1, app2 = make_app(alice, site_id, "A1"), make_app(alice, site_id, "A2")
    elsewhere = make_app(alice, other_site, "A3")
    ready = insert_job(engine, app1, state="STAGED_IN")
    restart = insert_job(engine, app1, state="RESTART_READY")
    tagged = insert_job(engine, app1, tags={"team": "x", "size": "big"})
    long_job = insert_job(engine, app1, wall_time_min=120)
    big_job = insert_job(engine, app1, num_nodes=8)
    mpi_ranks = insert_job(engine, app1, ranks_per_node=4)
    other_app = insert_job(engine, app2)
    insert_job(engine, elsewhere)  # another site: never acquired by this session
    runnable = {restart, tagged, long_job, big_job, mpi_ranks, other_app}

    def ids(**body: object) -> set[int]:
        # A fresh session per probe; release everything again afterwards.
        sid = make_session(alice, site_id)
        got = set(ids_of(acquire(alice, sid, **body)))
        assert alice.delete(f"/sessions/{sid}").status_code == 204
        return got

    assert ids() == runnable
    assert ids(states=["STAGED_IN"]) == {ready}
    assert ids(states=["STAGED_IN", "RESTART_READY"]) == {ready, restart}
    assert ids(states=[]) == set()
    assert ids(filter_tags={"team": "x"}) == {tagged}
    assert ids(filter_tags={"team": "x", "size": "small"}) == set()
    assert ids(app_ids=[app2]) == {other_app}
    assert ids(app_ids=[elsewhere]) == set()
    assert ids(max_wall_time_min=60) == runnable - {long_job}
    assert ids(max_wall_time_min=0) == runnable  # 0 means no limit (spec §14.6)
    assert ids(max_wall_time_min=None) == runnable
    assert ids(max_nodes_per_job=4) == runnable - {big_job}
    assert ids(max_nodes_per_job=0) == runnable
    assert ids(serial_only=True) == runnable - {big_job, mpi_ranks}
    assert ids(max_num_jobs=2) == {restart, tagged}  # lowest ids first
    combined = ids(max_wall_time_min=60, max_nodes_per_job=4, serial_only=True, app_ids=[app1])
    assert combined == {restart, tagged}


def test_mpi_mode_footprint_order_and_cap(make_user: Callable[[str], TestClient], engine: Engine) -> None:
    alice = make_user("alice")
    site_id = make_site(alice)
    app_id = make_app(alice, site_id)
    # Footprint = num_nodes / node_packing_count.
    big = insert_job(engine, app_id, num_nodes=4, wall_time_min=10)  # 4
    packed = insert_jobs(engine, app_id, 4, num_nodes=1, node_packing_count=4, wall_time_min=5)  # 0.25 each
    single_long = insert_job(engine, app_id, num_nodes=1, wall_time_min=60)  # 1
    single_short = insert_job(engine, app_id, num_nodes=1, wall_time_min=1)  # 1
    two = insert_job(engine, app_id, num_nodes=2, wall_time_min=30)  # 2

    # Default order: num_nodes asc, node_packing_count desc, wall_time_min desc, id asc.
    default_order = [*packed, single_long, single_short, two, big]
    sid = make_session(alice, site_id)
    got = acquire(alice, sid, max_aggregate_nodes=100.0)
    assert ids_of(got) == default_order
    assert alice.delete(f"/sessions/{sid}").status_code == 204

    # Cumulative cap: 4 x 0.25 + 1 + 1 = 3 <= 3.5; adding `two` would make 5. The prefix stops there.
    sid = make_session(alice, site_id)
    assert ids_of(acquire(alice, sid, max_aggregate_nodes=3.5)) == [*packed, single_long, single_short]
    # The locked-but-not-kept rows stay free for the next acquire.
    assert ids_of(acquire(alice, sid, max_aggregate_nodes=2)) == [two]
    assert acquire(alice, sid, max_aggregate_nodes=1) == []  # `big` alone needs 4
    assert alice.delete(f"/sessions/{sid}").status_code == 204

    # long_large_first: wall_time_min desc, num_nodes desc, node_packing_count desc, id asc.
    sid = make_session(alice, site_id)
    got = acquire(alice, sid, max_aggregate_nodes=100, sort_by="long_large_first")
    assert ids_of(got) == [single_long, two, big, *packed, single_short]
    assert all(job["session_id"] == sid for job in got)
    assert alice.delete(f"/sessions/{sid}").status_code == 204

    # An unknown sort_by means the default order; max_num_jobs bounds the candidates first.
    sid = make_session(alice, site_id)
    assert ids_of(acquire(alice, sid, max_aggregate_nodes=100, sort_by="bogus", max_num_jobs=5)) == default_order[:5]
    assert alice.delete(f"/sessions/{sid}").status_code == 204

    # MPI filters combine with the cap; max_aggregate_nodes=0 acquires nothing.
    sid = make_session(alice, site_id)
    assert acquire(alice, sid, max_aggregate_nodes=0) == []
    assert ids_of(acquire(alice, sid, max_aggregate_nodes=10, max_nodes_per_job=1, max_wall_time_min=30)) == [
        *packed,
        single_short,
    ]


def test_mpi_mode_tolerates_huge_packing_counts(make_user: Callable[[str], TestClient], engine: Engine) -> None:
    # node_packing_count >= 1 is a DB constraint; the acquire SQL still guards its division (spec §12.8).
    alice = make_user("alice")
    site_id = make_site(alice)
    app_id = make_app(alice, site_id)
    jobs = insert_jobs(engine, app_id, 3, node_packing_count=2**31 - 1)
    sid = make_session(alice, site_id)
    assert ids_of(acquire(alice, sid, max_aggregate_nodes=1e-6)) == jobs


def test_at_most_2048_per_acquire(make_user: Callable[[str], TestClient], engine: Engine) -> None:
    alice = make_user("alice")
    site_id = make_site(alice)
    app_id = make_app(alice, site_id)
    jobs = insert_jobs(engine, app_id, 2100)
    sid = make_session(alice, site_id)
    first = acquire(alice, sid, max_num_jobs=2048)
    assert len(first) == 2048
    assert ids_of(acquire(alice, sid, max_num_jobs=2048)) == jobs[2048:]
