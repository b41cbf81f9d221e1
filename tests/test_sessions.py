"""Sessions: create, list, tick, delete (spec §2, §8) and ownership isolation."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlalchemy import Engine, update

from balsam.server.crud.sessions import EXPIRED_MESSAGE
from balsam.server.db.tables import Job
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
)


def test_create_and_list_sessions(make_user: Callable[[str], TestClient], engine: Engine) -> None:
    alice = make_user("alice")
    site_id = make_site(alice)
    batch_job_id = insert_batch_job(engine, site_id)
    resp = alice.post("/sessions/", json={"site_id": site_id, "batch_job_id": batch_job_id, "bogus": 1})
    assert resp.status_code == 201
    created = resp.json()
    assert set(created) == {"id", "site_id", "batch_job_id", "heartbeat"}
    assert created["site_id"] == site_id and created["batch_job_id"] == batch_job_id
    assert "+" not in created["heartbeat"] and not created["heartbeat"].endswith("Z")
    # batch_job_id may be omitted or null.
    second = alice.post("/sessions/", json={"site_id": site_id}).json()
    assert second["batch_job_id"] is None

    listing = alice.get("/sessions/").json()
    assert listing == {"count": 2, "results": [created, second]}
    only = alice.get("/sessions/", params={"id": second["id"]}).json()
    assert only == {"count": 1, "results": [second]}
    # Not paginated: limit/offset are unknown parameters and ignored.
    assert alice.get("/sessions/", params={"limit": 1}).json()["count"] == 2
    # There is no item GET.
    assert alice.get(f"/sessions/{created['id']}").status_code == 405


def test_create_session_errors(make_user: Callable[[str], TestClient], engine: Engine) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    site_a = make_site(alice, "a")
    other_site_a = make_site(alice, "a2")
    site_b = make_site(bob, "b")
    foreign = alice.post("/sessions/", json={"site_id": site_b})
    assert foreign.status_code == 400 and foreign.json() == {"detail": f"No site with ID {site_b}"}
    missing = alice.post("/sessions/", json={"site_id": 999999})
    assert missing.status_code == 400 and missing.json() == {"detail": "No site with ID 999999"}
    # The batch job must belong to the session's site.
    bj_elsewhere = insert_batch_job(engine, other_site_a)
    wrong_bj = alice.post("/sessions/", json={"site_id": site_a, "batch_job_id": bj_elsewhere})
    assert wrong_bj.status_code == 400 and wrong_bj.json() == {"detail": f"No batch_job with id {bj_elsewhere}"}
    assert alice.post("/sessions/", json={"site_id": site_a, "batch_job_id": 12345}).json() == {
        "detail": "No batch_job with id 12345"
    }
    assert alice.post("/sessions/", json={}).status_code == 422
    assert alice.post("/sessions/", json={"site_id": "x"}).status_code == 422
    assert alice.get("/sessions/").json()["count"] == 0


def test_sessions_are_private(make_user: Callable[[str], TestClient]) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    sid = make_session(alice, make_site(alice))
    assert bob.get("/sessions/").json() == {"count": 0, "results": []}
    assert bob.get("/sessions/", params={"id": sid}).json()["count"] == 0
    assert bob.put(f"/sessions/{sid}").status_code == 404
    assert bob.post(f"/sessions/{sid}", json={"max_num_jobs": 1, "filter_tags": {}}).status_code == 404
    not_found = bob.delete(f"/sessions/{sid}")
    assert not_found.status_code == 404 and not_found.json()["error"] == "Not found"
    assert alice.get("/sessions/").json()["count"] == 1
    assert alice.put("/sessions/999999").status_code == 404
    assert alice.put(f"/sessions/{2**62}").status_code == 404
    assert alice.post(f"/sessions/{2**62}", json={"max_num_jobs": 1, "filter_tags": {}}).status_code == 404
    assert alice.get("/sessions/", params={"id": 2**62}).json() == {"count": 0, "results": []}
    assert alice.delete("/sessions/999999").status_code == 404


def test_tick_updates_heartbeat(make_user: Callable[[str], TestClient]) -> None:
    alice = make_user("alice")
    sid = make_session(alice, make_site(alice))
    before = alice.get("/sessions/").json()["results"][0]["heartbeat"]
    resp = alice.put(f"/sessions/{sid}")
    assert resp.status_code == 200 and resp.json() is None
    after = alice.get("/sessions/").json()["results"][0]["heartbeat"]
    assert after > before


def test_delete_times_out_running_jobs_and_releases_the_rest(
    make_user: Callable[[str], TestClient], engine: Engine
) -> None:
    alice = make_user("alice")
    site_id = make_site(alice)
    app_id = make_app(alice, site_id)
    jobs = insert_jobs(engine, app_id, 4)
    sid = make_session(alice, site_id)
    assert sorted(ids_of(acquire(alice, sid))) == jobs
    # The launcher starts two of them (the job routes keep the lock on a move to RUNNING).
    with engine.begin() as conn:
        conn.execute(update(Job).where(Job.id.in_(jobs[:2])).values(state="RUNNING"))

    resp = alice.delete(f"/sessions/{sid}")
    assert resp.status_code == 204 and resp.content == b""
    rows = job_rows(engine, jobs)
    assert all(row["session_id"] is None for row in rows.values())
    assert [rows[j]["state"] for j in jobs] == ["RUN_TIMEOUT", "RUN_TIMEOUT", "PREPROCESSED", "PREPROCESSED"]
    events = events_of(engine, jobs)
    assert [(e["job_id"], e["from_state"], e["to_state"]) for e in events] == [
        (jobs[0], "RUNNING", "RUN_TIMEOUT"),
        (jobs[1], "RUNNING", "RUN_TIMEOUT"),
    ]
    assert all(e["data"] == {"message": EXPIRED_MESSAGE} for e in events)
    assert alice.get("/sessions/").json()["count"] == 0
    # Gone: tick, acquire and a second delete are 404.
    assert alice.put(f"/sessions/{sid}").status_code == 404
    assert alice.post(f"/sessions/{sid}", json={"max_num_jobs": 1, "filter_tags": {}}).status_code == 404
    assert alice.delete(f"/sessions/{sid}").status_code == 404
    # The released jobs can be acquired by a new session: the two RUNNING ones are now RUN_TIMEOUT.
    fresh = make_session(alice, site_id)
    assert sorted(ids_of(acquire(alice, fresh))) == jobs[2:]
    assert sorted(ids_of(acquire(alice, fresh, states=["RUN_TIMEOUT"]))) == jobs[:2]


def test_deleting_batch_job_or_site_keeps_things_consistent(
    make_user: Callable[[str], TestClient], engine: Engine
) -> None:
    alice = make_user("alice")
    site_id = make_site(alice)
    app_id = make_app(alice, site_id)
    jobs = insert_jobs(engine, app_id, 2)
    sid = make_session(alice, site_id)
    assert len(acquire(alice, sid)) == 2
    assert alice.delete(f"/sites/{site_id}").status_code == 204
    assert alice.get("/sessions/").json()["count"] == 0
    assert job_rows(engine, jobs) == {}
