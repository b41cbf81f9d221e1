"""The site agent's traffic, in the order a real site produces it (spec §5.5, §8, §11):

processing service acquires STAGED_IN jobs and preprocesses them -> the serial launcher acquires with a
fractional `max_wall_time_min` and reports RUNNING / RUN_DONE / RUN_ERROR through the StatusUpdater -> the
processing service postprocesses with heterogeneous PATCH items (children get released) -> the user's
`Job.objects.filter(...).update(...)` (GET the ids, then `PUT jobs/?id=..`) and `job.state = ...; job.save()`
with free transitions -> the MPI launcher acquires with a node budget -> the file cleaner.

Uses the storyline jobs of jobs_create.py and the sessions of sessions.py; captures failed_ids, preproc_ids.
"""

from __future__ import annotations

from tools.differential.sequences.common import T0_ISO, T1_ISO, get, patch, post, put, status_item
from tools.differential.sequences.sessions import acquire_body
from tools.differential.steps import Step

PROCESSING_STATES = ["STAGED_IN", "RUN_DONE", "RUN_ERROR", "RUN_TIMEOUT"]
ONE = {"grp": "one"}


def processing_acquire(name: str) -> Step:
    return post(
        name,
        "/sessions/{s_proc}",
        acquire_body(100, filter_tags=ONE, states=PROCESSING_STATES),
        note="the processing service's FixedDepthJobSource",
    )


FILE_CLEANER_LOOKUP = get(
    "jobs.list.file_cleaner_lookup",
    "/jobs/",
    ("site_id", "{site_a}"),
    ("state", "JOB_FINISHED"),
    ("pending_file_cleanup", "True"),
)

STEPS: list[Step] = [
    processing_acquire("workflow.acquire.processing"),
    patch(
        "jobs.patch.status_updater",
        "/jobs/",
        [status_item(j, "PREPROCESSED") for j in ("j_plain", "j_out", "j_mpi", "j_fail", "j_held")],
        note="the StatusUpdater after the preprocess hooks",
    ),
    post(
        "workflow.acquire.serial_launcher",
        "/sessions/{s_serial}",
        acquire_body(
            8,
            max_nodes_per_job=1,
            max_wall_time_min=4.982247324784597,
            serial_only=True,
            filter_tags=ONE,
        ),
        note="issue 9: remaining wall time minus elapsed minutes, a float; upstream truncates it",
    ),
    patch(
        "jobs.patch.status_updater",
        "/jobs/",
        [
            status_item("j_plain", "RUNNING", data={"num_nodes": 1.0}),
            status_item("j_out", "RUNNING", data={"num_nodes": 1.0}),
            status_item("j_fail", "RUNNING", data={"num_nodes": 1.0}),
            status_item("j_held", "RUNNING", data={"num_nodes": 0.25}),
        ],
    ),
    put("sessions.tick", "/sessions/{s_serial}"),
    get("jobs.get.held", "/jobs/{j_held}"),
    get("jobs.list.by_batch_job", "/jobs/", ("batch_job_id", "{bj1}"), note="spec §12.2: upstream's wrong join"),
    patch(
        "jobs.patch.status_updater",
        "/jobs/",
        [
            status_item("j_plain", "RUN_DONE", T1_ISO),
            status_item("j_out", "RUN_DONE", T1_ISO),
            status_item("j_fail", "RUN_ERROR", T1_ISO, {"returncode": 1, "error": "Traceback: boom"}),
        ],
    ),
    processing_acquire("workflow.acquire.processing"),
    patch(
        "jobs.patch.heterogeneous_extra_keys_later",
        "/jobs/",
        [
            status_item("j_fail", "FAILED", T1_ISO, {"message": "no retries left"}),
            status_item("j_plain", "POSTPROCESSED", T1_ISO, serialized_return_value="gASVret", data={"result": 42}),
            status_item("j_out", "POSTPROCESSED", T1_ISO),
        ],
        note="spec §12.1: upstream builds the SET from the first item and drops the later items' extra keys",
    ),
    get("jobs.get.after_postprocess", "/jobs/{j_plain}"),
    get("jobs.get.after_postprocess", "/jobs/{j_out}"),
    get("jobs.list.released_children", "/jobs/", ("tags", "grp:kids")),
    # Job.objects.filter(state="FAILED").update(state="RESTART_READY"): GET the ids, then PUT jobs/?id=..
    get(
        "jobs.list.filter_update_lookup",
        "/jobs/",
        ("state", "FAILED"),
        ("tags", "grp:one"),
        capture={"failed_ids": "results.*.id"},
    ),
    put(
        "jobs.put_query.filter_update",
        "/jobs/",
        {"state": "RESTART_READY"},
        ("id", "{failed_ids}"),
        note="issue 9: a free transition FAILED -> RESTART_READY",
    ),
    get(
        "jobs.list.filter_update_lookup",
        "/jobs/",
        ("state", "PREPROCESSED"),
        ("tags", "grp:one"),
        capture={"preproc_ids": "results.*.id"},
    ),
    put(
        "jobs.put_query.filter_update",
        "/jobs/",
        {"state": "RESTART_READY"},
        ("id", "{preproc_ids}"),
        note="issue 9: PREPROCESSED -> RESTART_READY",
    ),
    post(
        "workflow.acquire.mpi_launcher",
        "/sessions/{s_mpi}",
        acquire_body(
            4,
            max_nodes_per_job=2,
            max_aggregate_nodes=2.0,
            max_wall_time_min=60,
            filter_tags=ONE,
            app_ids=["{app_a}"],
        ),
        note="the MPI launcher's SynchronousJobSource: a node budget, sorted candidates",
    ),
    patch("jobs.patch.status_updater", "/jobs/", [status_item("j_fail", "RUNNING", data={"num_nodes": 1.0})]),
    patch("jobs.patch.status_updater", "/jobs/", [status_item("j_fail", "RUN_TIMEOUT", T1_ISO)]),
    put("sessions.tick", "/sessions/{s_mpi}"),
    # job.state = "JOB_FINISHED"; job.save() skips a job and releases its children.
    put("jobs.put.skip_to_finished", "/jobs/{j_mpi}", {"state": "JOB_FINISHED"}),
    get("jobs.list.released_children", "/jobs/", ("tags", "grp:kids")),
    # job.state = "POSTPROCESSED" straight after STAGED_IN (upstream's own client tests do this).
    put(
        "jobs.put.staged_in_to_postprocessed",
        "/jobs/{j_child}",
        {"state": "POSTPROCESSED", "state_data": {"message": "skip"}},
    ),
    put("jobs.put.same_state", "/jobs/{j_child2}", {"state": "STAGED_IN"}),
    put(
        "jobs.put.save_fields",
        "/jobs/{j_child2}",
        {"tags": {"grp": "kids", "saved": "yes"}, "num_nodes": 1, "data": {"x": [1, 2]}, "wall_time_min": 5},
    ),
    put(
        "jobs.put.finished_to_running",
        "/jobs/{j_child}",
        {"state": "RUNNING", "state_timestamp": T0_ISO},
        note="spec §12.17 / §14.10: not validated for jobs",
    ),
    put("jobs.put.back_to_finished", "/jobs/{j_child}", {"state": "JOB_FINISHED"}),
    # The file cleaner.
    FILE_CLEANER_LOOKUP,
    patch(
        "jobs.patch.file_cleaner",
        "/jobs/",
        [{"id": "{j_plain}", "pending_file_cleanup": False}, {"id": "{j_child}", "pending_file_cleanup": False}],
    ),
    FILE_CLEANER_LOOKUP,
    get("jobs.list.storyline", "/jobs/", ("tags", "grp:one"), ("ordering", "id")),
    get("jobs.list.storyline", "/jobs/", ("tags", "grp:kids"), ("ordering", "id")),
]
