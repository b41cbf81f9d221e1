"""The event log (spec §9, §12.2, §14.8)."""

from __future__ import annotations

import json
from collections.abc import Callable

import redis
from fastapi.testclient import TestClient

from tests.jobs_helpers import create_jobs, job_spec, make_site_app, patch

BJ = {"project": "p", "queue": "debug", "num_nodes": 2, "wall_time_min": 30, "job_mode": "mpi"}


def test_event_filters_and_paging(make_user: Callable[[str], TestClient]) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    site_id, app_id = make_site_app(alice)
    make_site_app(bob)
    bj1, bj2, bj3 = (alice.post("/batch-jobs/", json={**BJ, "site_id": site_id}).json() for _ in range(3))
    alice.put(f"/batch-jobs/{bj1['id']}", json={"scheduler_id": 77})
    jobs = create_jobs(alice, [job_spec(app_id, f"w{i}", tags={"grp": str(i % 2)}) for i in range(6)])
    # Two jobs in bj1, one in bj2, none in bj3.
    patch(alice, [{"id": jobs[0]["id"], "batch_job_id": bj1["id"]}, {"id": jobs[1]["id"], "batch_job_id": bj1["id"]}])
    patch(alice, [{"id": jobs[2]["id"], "batch_job_id": bj2["id"]}])
    for j in jobs:
        patch(alice, [{"id": j["id"], "state": "PREPROCESSED", "state_data": {"k": j["workdir"]}}])
    all_events = alice.get("/events/").json()
    assert all_events["count"] == 12
    stamps = [e["timestamp"] for e in all_events["results"]]
    assert stamps == sorted(stamps, reverse=True)  # default -timestamp
    asc = alice.get("/events/", params={"ordering": "timestamp"}).json()["results"]
    assert [e["timestamp"] for e in asc] == sorted(stamps)
    by_bj = alice.get("/events/", params={"batch_job_id": bj1["id"]}).json()
    assert by_bj["count"] == 4 and {e["job_id"] for e in by_bj["results"]} == {jobs[0]["id"], jobs[1]["id"]}
    # Exact paging: each event exactly once across pages.
    seen = []
    for offset in range(0, 4):
        page = alice.get("/events/", params={"batch_job_id": bj1["id"], "limit": 1, "offset": offset}).json()
        assert page["count"] == 4 and len(page["results"]) == 1
        seen.append(page["results"][0]["id"])
    assert sorted(seen) == sorted(e["id"] for e in by_bj["results"])
    assert alice.get("/events/", params={"batch_job_id": bj3["id"]}).json()["count"] == 0
    by_sched = alice.get("/events/", params={"scheduler_id": 77}).json()
    assert by_sched["count"] == 4 and {e["job_id"] for e in by_sched["results"]} == {jobs[0]["id"], jobs[1]["id"]}
    assert alice.get("/events/", params={"scheduler_id": 78}).json()["count"] == 0
    assert alice.get("/events/", params={"to_state": "PREPROCESSED"}).json()["count"] == 6
    assert alice.get("/events/", params={"from_state": "CREATED"}).json()["count"] == 6
    assert alice.get("/events/", params={"tags": "grp:1"}).json()["count"] == 6
    assert alice.get("/events/", params={"data": "k:w3"}).json()["count"] == 1
    assert alice.get("/events/", params=[("job_id", jobs[0]["id"]), ("job_id", jobs[5]["id"])]).json()["count"] == 4
    assert alice.get("/events/", params={"timestamp_after": "2999-01-01"}).json()["count"] == 0
    assert alice.get("/events/", params={"timestamp_before": "2999-01-01T00:00:00+00:00"}).json()["count"] == 12
    assert alice.get("/events/", params={"limit": 0}).json() == {"count": 12, "results": []}
    assert bob.get("/events/").json()["count"] == 0
    # Jobs filtered by batch_job_id are the jobs of that batch job, not of its site (§12.2).
    assert alice.get("/jobs/", params={"batch_job_id": bj1["id"]}).json()["count"] == 2


def test_job_events_and_deletes_are_published(
    make_user: Callable[[str], TestClient], redis_params: dict[str, str]
) -> None:
    alice = make_user("alice")
    _site_id, app_id = make_site_app(alice)
    a, b = create_jobs(alice, [job_spec(app_id, "a"), job_spec(app_id, "b", parent_ids=[])])
    listener = redis.Redis(**redis_params).pubsub()  # type: ignore[arg-type]
    listener.subscribe("user-1")
    assert listener.get_message(timeout=2.0) is not None  # the subscribe confirmation
    patch(alice, [{"id": a["id"], "state": "PREPROCESSED", "state_data": {"x": "1"}}, {"id": b["id"], "workdir": "b2"}])
    assert alice.delete(f"/jobs/{b['id']}").status_code == 204
    messages = []
    while (msg := listener.get_message(timeout=1.0)) is not None:
        if msg["type"] == "message":
            messages.append(json.loads(msg["data"]))
    assert [(m["action"], m["type"]) for m in messages] == [("bulk-create", "event"), ("bulk-delete", "job")]
    (event,) = messages[0]["data"]
    assert event["job_id"] == a["id"] and event["to_state"] == "PREPROCESSED" and event["data"] == {"x": "1"}
    assert "+" not in event["timestamp"]
    assert messages[1]["data"] == {"ids": [b["id"]]}
