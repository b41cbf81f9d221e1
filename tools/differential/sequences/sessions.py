"""Sessions (spec §8): create, list, tick, delete, and acquire's validation. The acquires of the real
launchers and processing service are in workflow.py.

Captures: s_proc (the processing service's session at site_a), s_serial (the serial launcher's, with bj1),
s_mpi (the MPI launcher's), s_spare (deleted here), s_b (bob's).
"""

from __future__ import annotations

from typing import Any

from tools.differential.sequences.common import HUGE, MISSING, delete, get, post, put
from tools.differential.steps import Step

RUNNABLE = ["PREPROCESSED", "RESTART_READY"]


def acquire_body(max_num_jobs: Any = 8, **overrides: Any) -> dict[str, Any]:
    """Every key the published client sends to `POST /sessions/{id}` (`Session.acquire_jobs`)."""
    return {
        "max_num_jobs": max_num_jobs,
        "max_nodes_per_job": None,
        "max_aggregate_nodes": None,
        "max_wall_time_min": None,
        "serial_only": False,
        "sort_by": None,
        "filter_tags": {"grp": "none-such"},
        "states": RUNNABLE,
        "app_ids": [],
        **overrides,
    }


def _acquire(name: str, session: str = "s_spare", user: str = "alice", note: str = "", **overrides: Any) -> Step:
    return post(name, f"/sessions/{{{session}}}", acquire_body(**overrides), user=user, note=note)


STEPS: list[Step] = [
    post("sessions.create", "/sessions/", {"site_id": "{site_a}", "batch_job_id": None}, capture={"s_proc": "id"}),
    post(
        "sessions.create.with_batch_job",
        "/sessions/",
        {"site_id": "{site_a}", "batch_job_id": "{bj1}"},
        capture={"s_serial": "id"},
    ),
    post("sessions.create", "/sessions/", {"site_id": "{site_a}", "batch_job_id": None}, capture={"s_mpi": "id"}),
    post("sessions.create.site_only", "/sessions/", {"site_id": "{site_a}"}, capture={"s_spare": "id"}),
    post(
        "sessions.create",
        "/sessions/",
        {"site_id": "{site_b}", "batch_job_id": "{bj_b}"},
        user="bob",
        capture={"s_b": "id"},
    ),
    post("sessions.create.foreign_site", "/sessions/", {"site_id": "{site_b}", "batch_job_id": None}),
    post("sessions.create.missing_site", "/sessions/", {"site_id": MISSING, "batch_job_id": None}),
    post("sessions.create.batch_job_of_other_site", "/sessions/", {"site_id": "{site_a2}", "batch_job_id": "{bj1}"}),
    post("sessions.create.foreign_batch_job", "/sessions/", {"site_id": "{site_a}", "batch_job_id": "{bj_b}"}),
    post("sessions.create.missing_batch_job", "/sessions/", {"site_id": "{site_a}", "batch_job_id": MISSING}),
    post("sessions.create.bad_site_id", "/sessions/", {"site_id": "abc"}),
    post("sessions.create.empty_body", "/sessions/", {}),
    get("sessions.list", "/sessions/"),
    get("sessions.list", "/sessions/", user="bob"),
    get("sessions.list.by_ids", "/sessions/", ("id", "{s_proc}"), ("id", "{s_b}")),
    get("sessions.list.paging_params_ignored", "/sessions/", ("limit", "1"), ("offset", "1")),
    get("sessions.get_item", "/sessions/{s_proc}", note="no such route: 405"),
    put("sessions.tick", "/sessions/{s_proc}"),
    put("sessions.tick", "/sessions/{s_b}", user="bob"),
    put("sessions.tick.foreign", "/sessions/{s_b}"),
    put("sessions.tick.missing", f"/sessions/{MISSING}"),
    put("sessions.tick.huge_id", f"/sessions/{HUGE}"),
    put("sessions.tick.with_body", "/sessions/{s_proc}", {"heartbeat": "2000-01-01T00:00:00"}),
    # Acquire validation (filter_tags that match nothing, so no job is taken here).
    _acquire("sessions.acquire.nothing_matches"),
    _acquire("sessions.acquire.max_num_jobs_float", max_num_jobs=3.7, note="pydantic 1 truncates to 3"),
    _acquire("sessions.acquire.max_num_jobs_string", max_num_jobs="5"),
    _acquire("sessions.acquire.max_num_jobs_zero", max_num_jobs=0),
    _acquire("sessions.acquire.max_num_jobs_over_cap", max_num_jobs=2049),
    _acquire("sessions.acquire.max_num_jobs_cap", max_num_jobs=2048),
    _acquire("sessions.acquire.wall_time_string", max_wall_time_min="10"),
    _acquire("sessions.acquire.wall_time_zero", max_wall_time_min=0, max_nodes_per_job=0),
    _acquire("sessions.acquire.nodes_float", max_nodes_per_job=1.5, max_aggregate_nodes=3),
    _acquire("sessions.acquire.sort_long_large_first", sort_by="long_large_first", max_aggregate_nodes=4.0),
    _acquire("sessions.acquire.sort_unknown", sort_by="whatever", max_aggregate_nodes=4.0),
    _acquire("sessions.acquire.bad_state", states=["PREPROCESSED", "SLEEPING"]),
    _acquire("sessions.acquire.app_ids", app_ids=["{app_a}", MISSING]),
    _acquire("sessions.acquire.bad_wall_time", max_wall_time_min="soon"),
    post("sessions.acquire.missing_filter_tags", "/sessions/{s_spare}", {"max_num_jobs": 1}),
    post("sessions.acquire.missing_max_num_jobs", "/sessions/{s_spare}", {"filter_tags": {}}),
    post("sessions.acquire.minimal", "/sessions/{s_spare}", {"max_num_jobs": 1, "filter_tags": {"grp": "none"}}),
    _acquire("sessions.acquire.foreign_session", session="s_b"),
    post("sessions.acquire.missing_session", f"/sessions/{MISSING}", acquire_body()),
    Step("sessions.acquire.empty_body", "POST", "/sessions/{s_spare}", raw_body=b""),
    delete("sessions.delete.foreign", "/sessions/{s_b}"),
    delete("sessions.delete", "/sessions/{s_spare}"),
    delete("sessions.delete.again", "/sessions/{s_spare}"),
    put("sessions.tick.deleted", "/sessions/{s_spare}"),
    _acquire("sessions.acquire.deleted_session"),
    get("sessions.list.after_delete", "/sessions/"),
]
