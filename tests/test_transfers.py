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
    # Item state changes are not checked, as upstream (spec §6): any state may follow any other.
    resp = alice.put(f"/transfers/{first['id']}", json={"state": "awaiting_job"})
    assert resp.status_code == 200 and resp.json()["state"] == "awaiting_job"
    # Completing all `in` items of both jobs in one PATCH advances both jobs.
    ins = [t for t in listing["results"] if t["direction"] == "in"]
    resp = alice.patch("/transfers/", json=[{"id": t["id"], "state": "done", "task_id": "x"} for t in ins])
    assert resp.status_code == 200 and [t["state"] for t in resp.json()] == ["done", "done"]
    assert get_job(alice, a["id"])["state"] == "STAGED_IN" and get_job(alice, b["id"])["state"] == "STAGED_IN"
    # `done` is not final either; moving an item back has no effect on a job that already advanced.
    resp = alice.put(f"/transfers/{ins[0]['id']}", json={"state": "pending"})
    assert resp.status_code == 200 and resp.json()["state"] == "pending"
    assert get_job(alice, ins[0]["job_id"])["state"] == "STAGED_IN"
    # An error item has no effect on the job.
    for state in ("PREPROCESSED", "RUNNING", "RUN_DONE", "POSTPROCESSED"):
        assert alice.put(f"/jobs/{a['id']}", json={"state": state}).status_code == 200
    assert alice.put(f"/transfers/{out_item['id']}", json={"state": "error"}).status_code == 200
    assert get_job(alice, a["id"])["state"] == "POSTPROCESSED"
    assert alice.put(f"/transfers/{out_item['id']}", json={"state": "done"}).status_code == 200
    assert get_job(alice, a["id"])["state"] == "JOB_FINISHED"


def test_patch_naming_an_item_twice_keeps_the_last(make_user: Callable[[str], TestClient]) -> None:
    """As upstream: no 400 (the transfer service would retry it), and the first item is dropped whole."""
    alice = make_user("alice")
    make_site_app(alice)
    _site, app_id = make_site_app(alice, "other")
    (job,) = create_jobs(alice, [job_spec(app_id, "a", transfers=IN)])
    (item,) = alice.get("/transfers/", params={"job_id": job["id"]}).json()["results"]
    resp = alice.patch(
        "/transfers/", json=[{"id": item["id"], "state": "done"}, {"id": item["id"], "state": "active", "task_id": "t"}]
    )
    assert resp.status_code == 200
    assert [(t["state"], t["task_id"]) for t in resp.json()] == [("active", "t")]
    assert get_job(alice, job["id"])["state"] == "READY"
