"""Helpers shared by the job-lifecycle tests: a site with transfer locations, an app with slots, jobs."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

SITE = {
    "name": "theta",
    "path": "/projects/theta",
    "transfer_locations": {"laptop": "globus://1234", "archive": "rsync://me@host"},
}
APP = {
    "name": "sim",
    "serialized_class": "cls",
    "source_code": "src",
    "transfers": {
        "input": {"required": False, "direction": "in", "local_path": "in.dat"},
        "output": {"required": False, "direction": "out", "local_path": "out.dat", "recursive": True},
    },
}


def make_site_app(client: TestClient, site_name: str = "theta") -> tuple[int, int]:
    site = client.post("/sites/", json={**SITE, "name": site_name})
    assert site.status_code == 201, site.text
    app = client.post("/apps/", json={**APP, "site_id": site.json()["id"]})
    assert app.status_code == 201, app.text
    return site.json()["id"], app.json()["id"]


def job_spec(app_id: int, workdir: str, **extra: Any) -> dict[str, Any]:
    return {"app_id": app_id, "workdir": workdir, **extra}


def create_jobs(client: TestClient, specs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    resp = client.post("/jobs/", json=specs)
    assert resp.status_code == 201, resp.text
    jobs: list[dict[str, Any]] = resp.json()
    return jobs


def get_job(client: TestClient, job_id: int) -> dict[str, Any]:
    resp = client.get(f"/jobs/{job_id}")
    assert resp.status_code == 200, resp.text
    job: dict[str, Any] = resp.json()
    return job


def patch(client: TestClient, items: list[dict[str, Any]], expect: int = 200) -> Any:
    resp = client.patch("/jobs/", json=items)
    assert resp.status_code == expect, resp.text
    return resp.json()


def events_of(client: TestClient, job_id: int) -> list[dict[str, Any]]:
    resp = client.get("/events/", params={"job_id": job_id, "ordering": "timestamp"})
    assert resp.status_code == 200, resp.text
    results: list[dict[str, Any]] = resp.json()["results"]
    return sorted(results, key=lambda e: e["id"])  # in the order written (timestamps may be the client's)
