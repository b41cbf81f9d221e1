"""Helpers for the session, acquire, expiry and websocket tests: sites, apps, jobs and batch jobs.

Jobs and batch jobs are inserted with SQLAlchemy core into the real test database, so these tests do not
depend on the job routes; every other step goes through the API.
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, insert, select, update

from balsam.server.db.tables import BatchJob, Job, LogEvent

ACQUIRE_DEFAULTS: dict[str, Any] = {"max_num_jobs": 2048, "filter_tags": {}}


def make_site(user: TestClient, name: str = "site") -> int:
    resp = user.post("/sites/", json={"name": name, "path": f"/sites/{name}"})
    assert resp.status_code == 201, resp.text
    return int(resp.json()["id"])


def make_app(user: TestClient, site_id: int, name: str = "App") -> int:
    resp = user.post(
        "/apps/",
        json={"site_id": site_id, "name": name, "serialized_class": "x", "source_code": "y"},
    )
    assert resp.status_code == 201, resp.text
    return int(resp.json()["id"])


def make_session(user: TestClient, site_id: int, batch_job_id: int | None = None) -> int:
    resp = user.post("/sessions/", json={"site_id": site_id, "batch_job_id": batch_job_id})
    assert resp.status_code == 201, resp.text
    return int(resp.json()["id"])


def insert_jobs(engine: Engine, app_id: int, count: int, **fields: Any) -> list[int]:
    """`count` jobs of one app, PREPROCESSED unless `state` says otherwise; other columns from `fields`."""
    values = [{"app_id": app_id, "workdir": f"w/{i}", "state": "PREPROCESSED", **fields} for i in range(count)]
    with engine.begin() as conn:
        ids = conn.scalars(insert(Job).returning(Job.id), values).all()
    return sorted(ids)


def insert_job(engine: Engine, app_id: int, **fields: Any) -> int:
    return insert_jobs(engine, app_id, 1, **fields)[0]


def insert_batch_job(engine: Engine, site_id: int, state: str = "running") -> int:
    with engine.begin() as conn:
        return int(
            conn.execute(
                insert(BatchJob)
                .values(
                    site_id=site_id,
                    project="p",
                    queue="q",
                    num_nodes=4,
                    wall_time_min=30,
                    job_mode="mpi",
                    state=state,
                )
                .returning(BatchJob.id)
            ).scalar_one()
        )


def set_batch_job_state(engine: Engine, batch_job_id: int, state: str) -> None:
    with engine.begin() as conn:
        conn.execute(update(BatchJob).where(BatchJob.id == batch_job_id).values(state=state))


def job_rows(engine: Engine, ids: list[int] | None = None) -> dict[int, dict[str, Any]]:
    query = select(*Job.__table__.c, Job.session_id)  # the lease lives in job_leases
    if ids is not None:
        query = query.where(Job.id.in_(ids))
    with engine.connect() as conn:
        return {row.id: dict(row._mapping) for row in conn.execute(query)}


def events_of(engine: Engine, job_ids: list[int]) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(select(LogEvent.__table__).where(LogEvent.job_id.in_(job_ids)).order_by(LogEvent.id))
        return [dict(row._mapping) for row in rows]


def acquire(user: TestClient, session_id: int, **body: Any) -> list[dict[str, Any]]:
    resp = user.post(f"/sessions/{session_id}", json={**ACQUIRE_DEFAULTS, **body})
    assert resp.status_code == 200, resp.text
    jobs = resp.json()
    assert isinstance(jobs, list)
    return jobs


def ids_of(jobs: list[dict[str, Any]]) -> list[int]:
    return [int(job["id"]) for job in jobs]
