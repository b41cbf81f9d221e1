"""Batch jobs (spec §7) and their pub/sub messages (§10)."""

from __future__ import annotations

import json
from collections.abc import Callable

import redis
from fastapi.testclient import TestClient

from tests.jobs_helpers import make_site_app

BJ = {"project": "p", "queue": "debug", "num_nodes": 2, "wall_time_min": 30, "job_mode": "mpi"}


def test_batch_job_lifecycle(make_user: Callable[[str], TestClient], redis_params: dict[str, str]) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    site_id, app_id = make_site_app(alice)
    bob_site, _ = make_site_app(bob)
    listener = redis.Redis(**redis_params).pubsub()  # type: ignore[arg-type]
    listener.subscribe("user-1")
    resp = alice.post("/batch-jobs/", json={**BJ, "site_id": site_id, "filter_tags": {"x": 1}, "state": "running"})
    assert resp.status_code == 201
    bj = resp.json()
    assert bj["state"] == "pending_submission" and bj["scheduler_id"] is None and bj["filter_tags"] == {"x": "1"}
    assert bj["partitions"] is None and bj["status_info"] == {} and bj["optional_params"] == {}
    assert alice.post("/batch-jobs/", json={**BJ, "site_id": bob_site}).json() == {
        "detail": f"No site with ID {bob_site}"
    }
    assert alice.post("/batch-jobs/", json={**BJ, "site_id": site_id, "wall_time_min": 2**40}).status_code == 422
    assert alice.post("/batch-jobs/", json={**BJ, "site_id": site_id, "job_mode": "x"}).status_code == 422
    upd = alice.put(
        f"/batch-jobs/{bj['id']}",
        json={"scheduler_id": 123, "state": "queued", "start_time": "2024-01-01T10:00:00+02:00", "queue": "ignored"},
    )
    assert upd.status_code == 200
    assert upd.json()["start_time"] == "2024-01-01T08:00:00" and upd.json()["queue"] == "debug"
    assert alice.put(f"/batch-jobs/{bj['id']}", json={"state": "bogus"}).status_code == 422
    # pending_deletion: only finished may follow; other fields of the same update still apply.
    alice.put(f"/batch-jobs/{bj['id']}", json={"state": "pending_deletion"})
    kept = alice.patch("/batch-jobs/", json=[{"id": bj["id"], "state": "running", "status_info": {"m": "x"}}]).json()
    assert kept[0]["state"] == "pending_deletion" and kept[0]["status_info"] == {"m": "x"}
    fin = alice.patch("/batch-jobs/", json=[{"id": bj["id"], "state": "finished", "end_time": "2024-01-01 09:00:00"}])
    assert fin.json()[0]["state"] == "finished"
    assert alice.patch("/batch-jobs/", json=[{"id": 9999, "state": "queued"}]).json()["detail"] == (
        "Could not find some Batch Job IDs"
    )
    assert bob.get(f"/batch-jobs/{bj['id']}").status_code == 404
    # Filters.
    other = alice.post("/batch-jobs/", json={**BJ, "site_id": site_id, "queue": "prod"}).json()
    assert [b["id"] for b in alice.get("/batch-jobs/", params={"scheduler_id": 123}).json()["results"]] == [bj["id"]]
    assert alice.get("/batch-jobs/", params={"queue": "prod"}).json()["results"][0]["id"] == other["id"]
    assert alice.get("/batch-jobs/", params=[("state", "finished"), ("state", "queued")]).json()["count"] == 1
    assert alice.get("/batch-jobs/", params={"filter_tags": "x:1"}).json()["count"] == 1
    assert alice.get("/batch-jobs/", params={"start_time_after": "2024-01-01 07:00"}).json()["count"] == 1
    assert alice.get("/batch-jobs/", params={"end_time_before": "2024-01-01 08:00"}).json()["count"] == 0
    assert alice.get("/batch-jobs/", params={"site_id": site_id, "limit": 1, "offset": 1}).json()["count"] == 2
    assert bob.get("/batch-jobs/").json()["count"] == 0
    (job,) = alice.post("/jobs/", json=[{"app_id": app_id, "workdir": "w"}]).json()
    assert alice.put(f"/jobs/{job['id']}", json={"batch_job_id": bj["id"]}).json() == 1
    assert alice.get("/jobs/", params={"batch_job_id": bj["id"]}).json()["count"] == 1
    assert bob.delete(f"/batch-jobs/{bj['id']}").status_code == 404
    assert alice.delete(f"/batch-jobs/{bj['id']}").status_code == 204
    assert alice.get(f"/jobs/{job['id']}").json()["batch_job_id"] is None
    assert alice.get(f"/batch-jobs/{bj['id']}").status_code == 404
    actions = []
    while (msg := listener.get_message(timeout=1.0)) is not None:
        if msg["type"] == "message":
            body = json.loads(msg["data"])
            if body["type"] == "batch_job":
                actions.append(body["action"])
    assert actions[:2] == ["create", "update"] and "bulk-update" in actions and actions[-1] == "delete"


def test_patch_naming_an_id_twice_keeps_the_last_item(make_user: Callable[[str], TestClient]) -> None:
    """As upstream: no 400 (the client would retry it), and the first item is dropped whole."""
    alice = make_user("alice")
    site_id, _app_id = make_site_app(alice)
    bj = alice.post("/batch-jobs/", json={**BJ, "site_id": site_id}).json()
    items = [{"id": bj["id"], "state": "queued", "scheduler_id": 5}, {"id": bj["id"], "status_info": {"m": "x"}}]
    resp = alice.patch("/batch-jobs/", json=items)
    assert resp.status_code == 200 and len(resp.json()) == 1
    (out,) = resp.json()
    assert out["status_info"] == {"m": "x"} and out["state"] == "pending_submission" and out["scheduler_id"] is None


def test_start_time_ordering_places_nulls_as_upstream(make_user: Callable[[str], TestClient]) -> None:
    """PostgreSQL's default, as upstream: a batch job that has not started sorts last ascending, first descending."""
    alice = make_user("alice")
    site_id, _app_id = make_site_app(alice)
    ids = [alice.post("/batch-jobs/", json={**BJ, "site_id": site_id}).json()["id"] for _ in range(3)]
    alice.put(f"/batch-jobs/{ids[0]}", json={"start_time": "2024-01-02T00:00:00"})
    alice.put(f"/batch-jobs/{ids[2]}", json={"start_time": "2024-01-01T00:00:00"})
    ascending = [b["id"] for b in alice.get("/batch-jobs/", params={"ordering": "start_time"}).json()["results"]]
    descending = [b["id"] for b in alice.get("/batch-jobs/", params={"ordering": "-start_time"}).json()["results"]]
    assert ascending == [ids[2], ids[0], ids[1]]
    assert descending == [ids[1], ids[0], ids[2]]
