"""Request bodies read numbers as upstream's pydantic 1 did (issue: the serial launcher's fractional
`max_wall_time_min`). A float sent for an integer is truncated toward zero, an integer-valued string is taken
as that integer, and a number sent for a string field becomes its string. What is still out of the column's
range after that gets 422 (spec §14.2)."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from tests.jobs_helpers import create_jobs, get_job, job_spec, make_site_app


def test_float_max_wall_time_min_is_truncated_in_acquire(make_user: Callable[[str], TestClient]) -> None:
    alice = make_user("alice")
    site_id, app_id = make_site_app(alice)
    four, five = create_jobs(alice, [job_spec(app_id, "w4", wall_time_min=4), job_spec(app_id, "w5", wall_time_min=5)])
    session = alice.post("/sessions/", json={"site_id": site_id}).json()
    body = {
        "max_num_jobs": 10.9,  # read as 10
        "filter_tags": {},
        "states": ["STAGED_IN"],
        "max_wall_time_min": 4.982247324784597,  # what the serial launcher sends: read as 4
        "max_nodes_per_job": "8",
        "serial_only": True,
    }
    resp = alice.post(f"/sessions/{session['id']}", json=body)
    assert resp.status_code == 200, resp.text
    assert [j["id"] for j in resp.json()] == [four["id"]]
    assert get_job(alice, five["id"])["session_id"] is None
    # Out of range after truncation: still a 422.
    for bad in (
        {**body, "max_num_jobs": 2048.5 + 1},
        {**body, "max_num_jobs": 0.5},
        {**body, "max_wall_time_min": 2.0**40},
    ):
        assert alice.post(f"/sessions/{session['id']}", json=bad).status_code == 422, bad
    # Not a number at all: 422 as before.
    assert alice.post(f"/sessions/{session['id']}", json={**body, "max_num_jobs": "ten"}).status_code == 422


def test_job_bodies_truncate_floats_and_take_numeric_strings(make_user: Callable[[str], TestClient]) -> None:
    alice = make_user("alice")
    _site_id, app_id = make_site_app(alice)
    (job,) = create_jobs(
        alice,
        [job_spec(app_id, "j", num_nodes=2.7, wall_time_min="30", node_packing_count=1.2, return_code=-1.9)],
    )
    assert (job["num_nodes"], job["wall_time_min"], job["node_packing_count"], job["return_code"]) == (2, 30, 1, -1)
    (numeric_workdir,) = create_jobs(alice, [{"app_id": float(app_id), "workdir": 5}])
    assert numeric_workdir["workdir"] == "5" and numeric_workdir["app_id"] == app_id
    resp = alice.patch("/jobs/", json=[{"id": float(job["id"]), "return_code": 3.99, "ranks_per_node": "4"}])
    assert resp.status_code == 200 and resp.json() == 1
    after = get_job(alice, job["id"])
    assert after["return_code"] == 3 and after["ranks_per_node"] == 4
    assert alice.put(f"/jobs/{job['id']}", json={"threads_per_rank": 2.5}).json() == 1
    assert get_job(alice, job["id"])["threads_per_rank"] == 2
    # Truncation cannot bring an invalid value into range.
    assert alice.post("/jobs/", json=[job_spec(app_id, "z", num_nodes=2.0**31 + 0.5)]).status_code == 422
    assert alice.put(f"/jobs/{job['id']}", json={"return_code": 2.0**40}).status_code == 422


def test_other_bodies_read_numbers_like_upstream(make_user: Callable[[str], TestClient]) -> None:
    alice = make_user("alice")
    site_id, app_id = make_site_app(alice)
    batch = alice.post(
        "/batch-jobs/",
        json={
            "site_id": str(site_id),
            "project": 123,
            "queue": "q",
            "num_nodes": 2.5,
            "wall_time_min": 10.9,
            "job_mode": "mpi",
        },
    )
    assert batch.status_code == 201, batch.text
    assert (batch.json()["num_nodes"], batch.json()["wall_time_min"], batch.json()["project"]) == (2, 10, "123")
    patched = alice.patch("/batch-jobs/", json=[{"id": batch.json()["id"] + 0.2, "scheduler_id": 77.7}])
    assert patched.status_code == 200 and patched.json()[0]["scheduler_id"] == 77
    site = alice.put(
        f"/sites/{site_id}",
        json={
            "queued_jobs": {
                "77": {
                    "scheduler_id": 77,
                    "state": "queued",
                    "queue": "q",
                    "num_nodes": 2,
                    "wall_time_min": 10,
                    "project": "p",
                    "time_remaining_min": 9.6,
                    "queued_time_min": 0.4,
                }
            },
            "backfill_windows": {"q": [{"num_nodes": 3.0, "wall_time_min": 12.5}]},
        },
    )
    assert site.status_code == 200, site.text
    assert site.json()["queued_jobs"]["77"]["time_remaining_min"] == 9
    assert site.json()["backfill_windows"]["q"] == [{"num_nodes": 3, "wall_time_min": 12}]
    session = alice.post("/sessions/", json={"site_id": site_id + 0.4, "batch_job_id": None})
    assert session.status_code == 201 and session.json()["site_id"] == site_id
    (job,) = create_jobs(
        alice, [job_spec(app_id, "t", transfers={"input": {"location_alias": "laptop", "path": "/i"}})]
    )
    (item,) = alice.get("/transfers/", params={"job_id": job["id"]}).json()["results"]
    resp = alice.patch("/transfers/", json=[{"id": item["id"] + 0.5, "state": "active", "task_id": 42}])
    assert resp.status_code == 200 and resp.json()[0]["task_id"] == "42"
