"""Transfer items (spec §6): listing, filters, updates and the job advancement they trigger."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from tests.jobs_helpers import create_jobs, get_job, job_spec, make_site_app

IN = {"input": {"location_alias": "laptop", "path": "/remote/in.dat"}}
BOTH = {**IN, "output": {"location_alias": "archive", "path": "/remote/out"}}


def test_transfer_filters_updates_and_isolation(make_user: Callable[[str], TestClient]) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    site_id, app_id = make_site_app(alice)
    make_site_app(bob)
    a, b = create_jobs(
        alice, [job_spec(app_id, "a", transfers=BOTH, tags={"t": "1"}), job_spec(app_id, "b", transfers=IN)]
    )
    listing = alice.get("/transfers/").json()
    assert listing["count"] == 3
    first = listing["results"][0]
    assert set(first) == {
        "id",
        "job_id",
        "direction",
        "local_path",
        "remote_path",
        "location_alias",
        "recursive",
        "state",
        "task_id",
        "transfer_info",
    }
    out_item = next(t for t in listing["results"] if t["direction"] == "out")
    assert out_item["recursive"] is True and out_item["state"] == "awaiting_job"
    assert alice.get("/transfers/", params={"site_id": site_id}).json()["count"] == 3
    assert alice.get("/transfers/", params={"site_id": site_id + 100}).json()["count"] == 0
    assert alice.get("/transfers/", params=[("state", "pending"), ("state", "active")]).json()["count"] == 2
    assert alice.get("/transfers/", params={"direction": "out"}).json()["count"] == 1
    assert alice.get("/transfers/", params={"job_state": "READY"}).json()["count"] == 3
    assert alice.get("/transfers/", params={"tags": "t:1"}).json()["count"] == 2
    assert alice.get("/transfers/", params={"state": "bogus"}).status_code == 422
    assert bob.get("/transfers/").json()["count"] == 0
    assert bob.get(f"/transfers/{first['id']}").status_code == 404
    assert bob.put(f"/transfers/{first['id']}", json={"state": "done"}).status_code == 404
    assert alice.put(f"/transfers/{first['id']}", json={"state": "nope"}).status_code == 422
    assert (
        alice.patch("/transfers/", json=[{"id": 99999, "state": "done"}]).json()["detail"]
        == "Some TransferItems not found"
    )
    # Invalid item transition: awaiting_job is server-only, done is final.
    assert alice.put(f"/transfers/{first['id']}", json={"state": "awaiting_job"}).status_code == 400
    # Completing all `in` items of both jobs in one PATCH advances both jobs.
    ins = [t for t in listing["results"] if t["direction"] == "in"]
    resp = alice.patch("/transfers/", json=[{"id": t["id"], "state": "done", "task_id": "x"} for t in ins])
    assert resp.status_code == 200 and [t["state"] for t in resp.json()] == ["done", "done"]
    assert get_job(alice, a["id"])["state"] == "STAGED_IN" and get_job(alice, b["id"])["state"] == "STAGED_IN"
    assert alice.put(f"/transfers/{ins[0]['id']}", json={"state": "pending"}).status_code == 400
    # An error item has no effect on the job.
    for state in ("PREPROCESSED", "RUNNING", "RUN_DONE", "POSTPROCESSED"):
        assert alice.put(f"/jobs/{a['id']}", json={"state": state}).status_code == 200
    assert alice.put(f"/transfers/{out_item['id']}", json={"state": "error"}).status_code == 200
    assert get_job(alice, a["id"])["state"] == "POSTPROCESSED"
    assert alice.put(f"/transfers/{out_item['id']}", json={"state": "done"}).status_code == 200
    assert get_job(alice, a["id"])["state"] == "JOB_FINISHED"
