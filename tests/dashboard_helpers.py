"""A seeded account for the dashboard tests (in-process and in the browser): two sites, one of them stale.

Everything goes through the REST API, as a user's clients would write it, except the stale site's
`last_refresh`, which the API always sets to now (spec §3) and which is therefore back-dated in the database.
`client` is a TestClient or an httpx.Client with the user's bearer token.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, text

from balsam.server.clock import utcnow

STALE_FOR = timedelta(hours=3)


@dataclass
class Seeded:
    fresh_site: int
    stale_site: int
    apps: dict[str, int]
    jobs: dict[str, int]  # name -> id
    batch_jobs: dict[str, int] = field(default_factory=dict)
    session: int = 0


def _ok(resp: Any, status: int = 200) -> Any:
    assert resp.status_code == status, f"{resp.status_code} {resp.text}"
    return resp.json() if resp.content else None


def seed_account(client: Any, engine: Engine, prefix: str = "") -> Seeded:
    """Sites `<prefix>polaris` (refreshed now) and `<prefix>theta` (stale), apps, jobs in several states with
    tags, parents, transfer items and failure events, two active batch jobs and a session."""
    polaris = _ok(
        client.post(
            "/sites/",
            json={
                "name": f"{prefix}polaris",
                "path": "/lus/grand/projects/md/polaris",
                "transfer_locations": {"home": "globus://a1b2"},
            },
        ),
        201,
    )["id"]
    theta = _ok(client.post("/sites/", json={"name": f"{prefix}theta", "path": "/projects/old/theta"}), 201)["id"]
    sim = _ok(
        client.post(
            "/apps/",
            json={
                "site_id": polaris,
                "name": "Simulation",
                "serialized_class": "c",
                "source_code": "s",
                "description": "Molecular dynamics run",
                "parameters": {"steps": {"required": True, "default": ""}},
                "transfers": {"input": {"required": False, "direction": "in", "local_path": "in.dat"}},
            },
        ),
        201,
    )["id"]
    analysis = _ok(
        client.post(
            "/apps/", json={"site_id": polaris, "name": "Analysis", "serialized_class": "c", "source_code": "s"}
        ),
        201,
    )["id"]
    legacy = _ok(
        client.post("/apps/", json={"site_id": theta, "name": "Legacy", "serialized_class": "c", "source_code": "s"}),
        201,
    )["id"]

    specs = [
        {"app_id": sim, "workdir": f"md/run{i}", "tags": {"experiment": "alpha" if i < 4 else "beta", "run": str(i)}}
        for i in range(6)
    ]
    specs.append(
        {
            "app_id": sim,
            "workdir": "md/staged",
            "tags": {"experiment": "alpha"},
            "transfers": {"input": {"location_alias": "home", "path": "/data/in.dat"}},
        }
    )
    specs += [{"app_id": legacy, "workdir": f"legacy/{i}", "tags": {"experiment": "old"}} for i in range(3)]
    created = _ok(client.post("/jobs/", json=specs), 201)
    ids = {spec["workdir"]: job["id"] for spec, job in zip(specs, created, strict=True)}
    child = _ok(
        client.post(
            "/jobs/",
            json=[{"app_id": analysis, "workdir": "analysis/merge", "parent_ids": [ids["md/run0"], ids["md/run1"]]}],
        ),
        201,
    )[0]["id"]
    ids["analysis/merge"] = child

    def move(job: str, *steps: tuple[str, dict[str, Any]]) -> None:
        for state, data in steps:
            _ok(client.put(f"/jobs/{ids[job]}", json={"state": state, "state_data": data}))

    move("md/run0", ("PREPROCESSED", {}), ("RUNNING", {"num_nodes": 1.0}), ("RUN_DONE", {}), ("POSTPROCESSED", {}))
    move("md/run1", ("PREPROCESSED", {}), ("RUNNING", {"num_nodes": 1.0}), ("RUN_DONE", {}), ("POSTPROCESSED", {}))
    move("md/run2", ("PREPROCESSED", {}), ("RUNNING", {"num_nodes": 2.0}))
    move(
        "md/run3",
        ("PREPROCESSED", {}),
        ("RUNNING", {}),
        ("RUN_ERROR", {"returncode": "139", "error": "Segmentation fault in step 1200"}),
    )
    move("md/run4", ("PREPROCESSED", {}), ("RUNNING", {}), ("RUN_TIMEOUT", {"message": "Wall time of 60 min reached"}))
    move("legacy/0", ("FAILED", {"message": "Input deck missing"}))
    move("legacy/1", ("PREPROCESSED", {}), ("RUNNING", {}), ("RUN_DONE", {}), ("POSTPROCESSED", {}))

    queued = _ok(
        client.post(
            "/batch-jobs/",
            json={
                "site_id": polaris,
                "project": "MDproj",
                "queue": "prod",
                "num_nodes": 16,
                "wall_time_min": 120,
                "job_mode": "mpi",
            },
        ),
        201,
    )["id"]
    _ok(
        client.put(
            f"/batch-jobs/{queued}",
            json={"state": "queued", "scheduler_id": 40021, "status_info": {"queue_position": "3"}},
        )
    )
    running = _ok(
        client.post(
            "/batch-jobs/",
            json={
                "site_id": polaris,
                "project": "MDproj",
                "queue": "debug",
                "num_nodes": 2,
                "wall_time_min": 30,
                "job_mode": "serial",
            },
        ),
        201,
    )["id"]
    _ok(
        client.put(
            f"/batch-jobs/{running}",
            json={"state": "running", "scheduler_id": 40022, "status_info": {"host": "x3005c0s7"}},
        )
    )
    session = _ok(client.post("/sessions/", json={"site_id": polaris, "batch_job_id": running}), 201)["id"]

    with engine.begin() as conn:
        conn.execute(
            text("UPDATE sites SET last_refresh = :t WHERE id = :id"), {"t": utcnow() - STALE_FOR, "id": theta}
        )
    return Seeded(
        fresh_site=polaris,
        stale_site=theta,
        apps={"Simulation": sim, "Analysis": analysis, "Legacy": legacy},
        jobs=ids,
        batch_jobs={"queued": queued, "running": running},
        session=session,
    )


def seed_history(client: Any, app_id: int, jobs: int = 240, span: timedelta = timedelta(days=6)) -> None:
    """`jobs` more jobs (tag batch:history) that finished or failed at times spread over the past `span`,
    with back-dated events through the API's `state_timestamp`, so that the throughput charts have a shape.
    One in eight fails; the newest tenth of them land in the last hour."""
    specs = [{"app_id": app_id, "workdir": f"history/{i}", "tags": {"batch": "history"}} for i in range(jobs)]
    created = _ok(client.post("/jobs/", json=specs), 201)
    now = utcnow()
    items = []
    for i, job in enumerate(created):
        recent = i % 10 == 0
        offset = timedelta(minutes=(i * 7) % 58 + 1) if recent else span * ((i * 37 % jobs) / jobs) + timedelta(hours=1)
        when = now - offset
        failed = i % 8 == 3
        items.append(
            {
                "id": job["id"],
                "state": "FAILED" if failed else "JOB_FINISHED",
                "state_timestamp": when.isoformat(),
                "state_data": {"message": "Exceeded memory limit (OOM killer)"} if failed else {},
            }
        )
    _ok(client.patch("/jobs/", json=items))
