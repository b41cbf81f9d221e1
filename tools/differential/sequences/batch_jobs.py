"""Batch jobs (spec §7): creation as the user or the queue maintainer, the scheduler service's PUT/PATCH.

Captures: bj1 (alice, site_a, MPI mode; the launcher sessions use it), bj2 (alice, serial with partitions;
deleted here), bj_coerce (from coerced numbers), bj_b (bob's).
"""

from __future__ import annotations

from typing import Any

from tools.differential.sequences.common import MISSING, T0, T0_ISO, T1_ISO, TOO_BIG_INT, delete, get, patch, post, put
from tools.differential.steps import Step


def batch_job(site: str = "site_a", **extra: Any) -> dict[str, Any]:
    return {
        "site_id": f"{{{site}}}",
        "project": "datascience",
        "queue": "debug",
        "num_nodes": 2,
        "wall_time_min": 30,
        "job_mode": "mpi",
        "optional_params": {},
        "filter_tags": {"grp": "one"},
        "partitions": None,
        **extra,
    }


PARTITIONS = [
    {"job_mode": "serial", "num_nodes": 1, "filter_tags": {"grp": "one"}},
    {"job_mode": "mpi", "num_nodes": 1, "filter_tags": {}},
]

STEPS: list[Step] = [
    post("batch_jobs.create", "/batch-jobs/", batch_job(), capture={"bj1": "id"}),
    post(
        "batch_jobs.create.partitions",
        "/batch-jobs/",
        batch_job(job_mode="serial", partitions=PARTITIONS, optional_params={"mig": "1"}),
        capture={"bj2": "id"},
    ),
    post("batch_jobs.create", "/batch-jobs/", batch_job("site_b"), user="bob", capture={"bj_b": "id"}),
    post(
        "batch_jobs.create.coerced_numbers",
        "/batch-jobs/",
        batch_job(num_nodes=2.5, wall_time_min="45", optional_params={"n": 1}),
        capture={"bj_coerce": "id"},
        note="issue 9 item 5: batch-job sizes read as pydantic 1 reads them",
    ),
    post("batch_jobs.create.foreign_site", "/batch-jobs/", batch_job("site_b")),
    post("batch_jobs.create.missing_site", "/batch-jobs/", {**batch_job(), "site_id": MISSING}),
    post("batch_jobs.create.bad_job_mode", "/batch-jobs/", batch_job(job_mode="parallel")),
    post("batch_jobs.create.missing_fields", "/batch-jobs/", {"site_id": "{site_a}", "num_nodes": 1}),
    post("batch_jobs.create.wall_time_too_big", "/batch-jobs/", batch_job(wall_time_min=TOO_BIG_INT)),
    post("batch_jobs.create.string_num_nodes", "/batch-jobs/", batch_job(num_nodes="many")),
    post("batch_jobs.create.nul_in_queue", "/batch-jobs/", batch_job(queue="de\u0000bug")),
    post(
        "batch_jobs.create.state_ignored",
        "/batch-jobs/",
        batch_job(state="running", scheduler_id=5),
        capture={"bj_state": "id"},
        note="state and scheduler_id are not creation fields",
    ),
    # Reads and the scheduler service's filters.
    get("batch_jobs.list", "/batch-jobs/"),
    get("batch_jobs.list", "/batch-jobs/", user="bob"),
    get("batch_jobs.list.by_ids", "/batch-jobs/", ("id", "{bj1}"), ("id", "{bj_b}")),
    get("batch_jobs.list.by_site", "/batch-jobs/", ("site_id", "{site_a}")),
    get("batch_jobs.list.by_state", "/batch-jobs/", ("state", "pending_submission"), ("state", "queued")),
    get("batch_jobs.list.by_unknown_state", "/batch-jobs/", ("state", "bogus"), note="states are not validated"),
    get("batch_jobs.list.by_queue", "/batch-jobs/", ("queue", "debug"), ("site_id", "{site_a}")),
    get("batch_jobs.list.by_filter_tags", "/batch-jobs/", ("filter_tags", "grp:one")),
    get("batch_jobs.get", "/batch-jobs/{bj1}"),
    get("batch_jobs.get.foreign", "/batch-jobs/{bj_b}"),
    get("batch_jobs.get.missing", f"/batch-jobs/{MISSING}"),
    # The scheduler service: submit (PUT), then mirror the queue (PATCH).
    put(
        "batch_jobs.put.submitted",
        "/batch-jobs/{bj1}",
        {"scheduler_id": 4242, "state": "queued", "status_info": {"submit": "ok"}},
    ),
    put(
        "batch_jobs.put.submit_failed",
        "/batch-jobs/{bj_coerce}",
        {"state": "submit_failed", "status_info": {"error": "qsub: bad queue"}},
    ),
    patch(
        "batch_jobs.patch.scheduler_sync",
        "/batch-jobs/",
        [
            {"id": "{bj1}", "state": "running", "start_time": T0_ISO},
            {"id": "{bj2}", "state": "queued", "scheduler_id": 4243, "status_info": {"q": "1"}},
        ],
    ),
    put(
        "batch_jobs.put.aware_time",
        "/batch-jobs/{bj2}",
        {"start_time": "2024-01-02T03:04:05+02:00"},
        note="spec §14.4: the reply may echo the offset",
    ),
    put("batch_jobs.put.pending_deletion", "/batch-jobs/{bj2}", {"state": "pending_deletion"}),
    put(
        "batch_jobs.put.after_pending_deletion",
        "/batch-jobs/{bj2}",
        {"state": "running", "status_info": {"a": "b"}},
        note="a state other than finished is ignored, the other fields apply",
    ),
    put("batch_jobs.put.finished", "/batch-jobs/{bj2}", {"state": "finished", "end_time": T1_ISO}),
    put("batch_jobs.put.bad_state", "/batch-jobs/{bj1}", {"state": "exploded"}),
    put("batch_jobs.put.null_state", "/batch-jobs/{bj1}", {"state": None}),
    put("batch_jobs.put.null_status_info", "/batch-jobs/{bj1}", {"status_info": None}),
    put("batch_jobs.put.bad_datetime", "/batch-jobs/{bj1}", {"start_time": "soon"}),
    put("batch_jobs.put.immutable_fields", "/batch-jobs/{bj1}", {"num_nodes": 99, "queue": "prod"}),
    put("batch_jobs.put.scheduler_id_float", "/batch-jobs/{bj1}", {"scheduler_id": 4242.0}),
    put("batch_jobs.put.foreign", "/batch-jobs/{bj_b}", {"state": "queued"}),
    put("batch_jobs.put.missing", f"/batch-jobs/{MISSING}", {"state": "queued"}),
    patch(
        "batch_jobs.patch.missing_id",
        "/batch-jobs/",
        [{"id": "{bj1}", "state": "running"}, {"id": MISSING, "state": "running"}],
    ),
    patch("batch_jobs.patch.foreign_id", "/batch-jobs/", [{"id": "{bj_b}", "state": "running"}]),
    patch(
        "batch_jobs.patch.duplicate_ids",
        "/batch-jobs/",
        [{"id": "{bj1}", "status_info": {"n": "1"}}, {"id": "{bj1}", "status_info": {"n": "2"}}],
    ),
    patch("batch_jobs.patch.empty", "/batch-jobs/", []),
    patch("batch_jobs.patch.bad_state", "/batch-jobs/", [{"id": "{bj1}", "state": "exploded"}]),
    get("batch_jobs.list.by_scheduler_id", "/batch-jobs/", ("scheduler_id", "4242")),
    get("batch_jobs.list.started_after", "/batch-jobs/", ("start_time_after", T0), ("site_id", "{site_a}")),
    get("batch_jobs.list.started_before", "/batch-jobs/", ("start_time_before", T0)),
    get("batch_jobs.list.ended_after", "/batch-jobs/", ("end_time_after", T0)),
    get("batch_jobs.list.ordering", "/batch-jobs/", ("ordering", "-start_time")),
    get("batch_jobs.list.ordering", "/batch-jobs/", ("ordering", "start_time")),
    get("batch_jobs.list.bad_ordering", "/batch-jobs/", ("ordering", "queue")),
    get("batch_jobs.get.after_updates", "/batch-jobs/{bj1}"),
    get("batch_jobs.get.after_updates", "/batch-jobs/{bj2}"),
    delete("batch_jobs.delete", "/batch-jobs/{bj2}"),
    delete("batch_jobs.delete.again", "/batch-jobs/{bj2}"),
    delete("batch_jobs.delete.foreign", "/batch-jobs/{bj_b}"),
]
