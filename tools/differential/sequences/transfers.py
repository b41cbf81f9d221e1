"""Transfer items (spec §6): the transfer service's list / PATCH / PUT, and the job advancement they cause.

At this point j_in and j_inout are READY with a pending `in` item, and j_out is POSTPROCESSED with a
pending `out` item. Captures: t_in, t_io_in, t_io_out, t_out, t_b (bob's).
"""

from __future__ import annotations

from tools.differential.sequences.common import HUGE, MISSING, get, patch, put
from tools.differential.steps import Step

STEPS: list[Step] = [
    get("transfers.list", "/transfers/"),
    get("transfers.list", "/transfers/", user="bob", capture={"t_b": "results.0.id"}),
    get("transfers.list.by_site", "/transfers/", ("site_id", "{site_a}")),
    get(
        "transfers.list.by_site_and_states",
        "/transfers/",
        ("site_id", "{site_a}"),
        ("state", "pending"),
        ("state", "awaiting_job"),
        note="the transfer service's query",
    ),
    get("transfers.list.by_job", "/transfers/", ("job_id", "{j_in}"), capture={"t_in": "results.0.id"}),
    get(
        "transfers.list.by_job_and_direction",
        "/transfers/",
        ("job_id", "{j_inout}"),
        ("direction", "in"),
        capture={"t_io_in": "results.0.id"},
    ),
    get(
        "transfers.list.by_job_and_direction",
        "/transfers/",
        ("job_id", "{j_inout}"),
        ("direction", "out"),
        capture={"t_io_out": "results.0.id"},
    ),
    get("transfers.list.by_job", "/transfers/", ("job_id", "{j_out}"), capture={"t_out": "results.0.id"}),
    get("transfers.list.by_ids", "/transfers/", ("id", "{t_in}"), ("id", "{t_out}"), ("id", "{t_b}")),
    get("transfers.list.by_job_state", "/transfers/", ("job_state", "READY")),
    get("transfers.list.by_tags", "/transfers/", ("tags", "kind:inout")),
    get("transfers.list.bad_direction", "/transfers/", ("direction", "sideways")),
    get("transfers.list.bad_state", "/transfers/", ("state", "teleporting")),
    get("transfers.list.bad_site_id", "/transfers/", ("site_id", "abc")),
    get("transfers.list.site_id_repeated", "/transfers/", ("site_id", "{site_a}"), ("site_id", "{site_a2}")),
    get("transfers.get", "/transfers/{t_in}"),
    get("transfers.get.foreign", "/transfers/{t_b}"),
    get("transfers.get.missing", f"/transfers/{MISSING}"),
    get("transfers.get.huge_id", f"/transfers/{HUGE}"),
    # The transfer service: submit a batch (active + task id), then mirror the task's state.
    patch(
        "transfers.patch.submitted",
        "/transfers/",
        [
            {"id": "{t_in}", "state": "active", "task_id": "globus-task-1"},
            {"id": "{t_io_in}", "state": "active", "task_id": "globus-task-1"},
        ],
    ),
    patch(
        "transfers.patch.done",
        "/transfers/",
        [
            {"id": "{t_in}", "state": "done", "transfer_info": {"bytes": 100, "files": ["a", "b"]}},
        ],
        note="j_in READY -> STAGED_IN",
    ),
    put(
        "transfers.put.done",
        "/transfers/{t_io_in}",
        {"state": "done", "transfer_info": {"bytes": 5}},
        note="j_inout READY -> STAGED_IN",
    ),
    get("jobs.get.after_stage_in", "/jobs/{j_in}"),
    get("jobs.get.after_stage_in", "/jobs/{j_inout}"),
    put("jobs.put.postprocessed_with_out_items", "/jobs/{j_inout}", {"state": "POSTPROCESSED"}),
    get("transfers.list.by_job", "/transfers/", ("job_id", "{j_inout}")),
    patch(
        "transfers.patch.done",
        "/transfers/",
        [
            {"id": "{t_out}", "state": "done", "task_id": "globus-task-2"},
            {"id": "{t_io_out}", "state": "done", "task_id": "globus-task-2"},
        ],
        note="j_out and j_inout POSTPROCESSED -> JOB_FINISHED",
    ),
    get("jobs.list.after_stage_out", "/jobs/", ("id", "{j_out}"), ("id", "{j_inout}")),
    # Errors and free item transitions.
    put("transfers.put.back_to_pending", "/transfers/{t_in}", {"state": "pending"}),
    put("transfers.put.error_state", "/transfers/{t_in}", {"state": "error", "transfer_info": {"error": "x"}}),
    put("transfers.put.task_id_int", "/transfers/{t_in}", {"task_id": 5}, note="pydantic 1 coerces to '5'"),
    put("transfers.put.unknown_field", "/transfers/{t_in}", {"direction": "out", "bogus": 1}),
    put("transfers.put.null_transfer_info", "/transfers/{t_in}", {"transfer_info": None}),
    put("transfers.put.bad_state", "/transfers/{t_in}", {"state": "teleporting"}),
    put("transfers.put.foreign", "/transfers/{t_b}", {"state": "done"}),
    put("transfers.put.missing", f"/transfers/{MISSING}", {"state": "done"}),
    patch(
        "transfers.patch.missing_id",
        "/transfers/",
        [{"id": "{t_in}", "state": "done"}, {"id": MISSING, "state": "done"}],
    ),
    patch("transfers.patch.foreign_id", "/transfers/", [{"id": "{t_b}", "state": "done"}]),
    patch(
        "transfers.patch.duplicate_ids",
        "/transfers/",
        [{"id": "{t_in}", "task_id": "a"}, {"id": "{t_in}", "task_id": "b"}],
    ),
    patch("transfers.patch.empty", "/transfers/", []),
    patch("transfers.patch.bad_state", "/transfers/", [{"id": "{t_in}", "state": "teleporting"}]),
    patch("transfers.patch.not_a_list", "/transfers/", {"id": "{t_in}", "state": "done"}),
    get("transfers.get", "/transfers/{t_in}"),
]
