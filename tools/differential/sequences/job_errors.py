"""Job updates and deletes beyond the site agent's happy path (spec §5.2, §5.4, §12.1, §12.7, §14):
heterogeneous PATCH items, read-only fields, coerced numbers, the 5000 caps, missing and foreign ids,
null pseudo-fields, deletes of one job, of a query, of a session-held job.

Uses j_h1, j_h2 (grp:hetero), j_coerce_*, j_held, j_b; captures bulk jobs under grp:bulk.
"""

from __future__ import annotations

from tools.differential.sequences.common import (
    HUGE,
    MISSING,
    T0_ISO,
    TOO_BIG_INT,
    delete,
    get,
    patch,
    post,
    put,
    status_item,
)
from tools.differential.sequences.jobs_create import job
from tools.differential.steps import Step

STATE_DATA_NULL = "spec §14.3: `state_data: null` gets 422 or is treated as {}; we take it as {}, upstream 422s"

STEPS: list[Step] = [
    patch(
        "jobs.patch.heterogeneous_key_missing_later",
        "/jobs/",
        [
            status_item("j_h1", "PREPROCESSED", return_code=0, serialized_return_value="gASV1"),
            status_item("j_h2", "PREPROCESSED"),
        ],
        note="spec §12.1: upstream answers 500 when a later item lacks a key the first has",
    ),
    get("jobs.list.hetero", "/jobs/", ("tags", "grp:hetero"), ("ordering", "id")),
    put("jobs.put.to_restart_ready", "/jobs/{j_h2}", {"state": "RESTART_READY"}),
    put(
        "jobs.put_query.some_already_in_state",
        "/jobs/",
        {"state": "RESTART_READY"},
        ("tags", "grp:hetero"),
        note="spec §12.1: the job already in the state loses its keys upstream",
    ),
    put("jobs.put_query.no_match", "/jobs/", {"state": "READY"}, ("tags", "grp:nothing")),
    put("jobs.put_query.all_of_users_jobs", "/jobs/", {"data": {"touched": True}}, user="bob"),
    put("jobs.put_query.bad_filter", "/jobs/", {"state": "READY"}, ("state", "DANCING")),
    put("jobs.put_query.bad_body", "/jobs/", {"state": "DANCING"}, ("tags", "grp:hetero")),
    # Read-only fields are ignored, whatever their values (spec §5.4, §14.12).
    patch(
        "jobs.patch.read_only_fields",
        "/jobs/",
        [
            {
                "id": "{j_h1}",
                "app_id": "{app_coerce}",
                "parent_ids": ["{j_plain}"],
                "session_id": "{s_proc}",
                "last_update": T0_ISO,
                "transfers": {},
                "workdir": "hetero/1-renamed",
            }
        ],
    ),
    put(
        "jobs.put.read_only_fields",
        "/jobs/{j_h2}",
        {
            "id": MISSING,
            "app_id": MISSING,
            "parent_ids": [MISSING],
            "session_id": MISSING,
            "last_update": "2000-01-01T00:00:00",
            "tags": {"grp": "hetero", "saved": "1"},
        },
    ),
    get("jobs.list.hetero", "/jobs/", ("tags", "grp:hetero"), ("ordering", "id")),
    patch("jobs.patch.unknown_fields", "/jobs/", [{"id": "{j_h1}", "bogus": 1, "site_name": "site-a"}]),
    patch(
        "jobs.patch.coerced_numbers",
        "/jobs/",
        [{"id": "{j_h1}", "num_nodes": 2.9, "wall_time_min": "7", "return_code": "0", "gpus_per_rank": "1"}],
        note="issue 9 item 5",
    ),
    put("jobs.put.coerced_numbers", "/jobs/{j_h2}", {"num_nodes": "3", "node_packing_count": 2.0}),
    get("jobs.get", "/jobs/{j_h1}"),
    patch("jobs.patch.batch_job_id", "/jobs/", [{"id": "{j_h1}", "batch_job_id": "{bj1}"}]),
    patch(
        "jobs.patch.foreign_batch_job_id",
        "/jobs/",
        [{"id": "{j_h1}", "batch_job_id": "{bj_b}"}],
        note="upstream stores another user's batch job id without a check",
    ),
    patch("jobs.patch.missing_batch_job_id", "/jobs/", [{"id": "{j_h1}", "batch_job_id": MISSING}]),
    patch("jobs.patch.null_batch_job_id", "/jobs/", [{"id": "{j_h1}", "batch_job_id": None}]),
    patch("jobs.patch.null_tags", "/jobs/", [{"id": "{j_h1}", "tags": None}]),
    patch("jobs.patch.null_num_nodes", "/jobs/", [{"id": "{j_h1}", "num_nodes": None}]),
    patch(
        "jobs.patch.null_state",
        "/jobs/",
        [{"id": "{j_h1}", "state": None, "tags": {"grp": "hetero"}}],
        note="upstream treats a null state as absent and applies the other fields",
    ),
    put("jobs.put.null_state", "/jobs/{j_h1}", {"state": None}),
    patch("jobs.patch.null_return_code", "/jobs/", [{"id": "{j_h1}", "return_code": None}]),
    patch("jobs.patch.bad_number", "/jobs/", [{"id": "{j_h1}", "num_nodes": "x"}]),
    patch("jobs.patch.num_nodes_too_big", "/jobs/", [{"id": "{j_h1}", "num_nodes": TOO_BIG_INT}]),
    patch("jobs.patch.nul_in_workdir", "/jobs/", [{"id": "{j_h1}", "workdir": "a\u0000b"}]),
    patch("jobs.patch.absolute_workdir", "/jobs/", [{"id": "{j_h1}", "workdir": "/abs"}]),
    patch("jobs.patch.bad_state", "/jobs/", [{"id": "{j_h1}", "state": "DANCING"}]),
    patch("jobs.patch.duplicate_ids", "/jobs/", [status_item("j_h1", "READY"), status_item("j_h1", "READY")]),
    patch("jobs.patch.missing_id", "/jobs/", [status_item("j_h1", "READY"), {"id": MISSING, "state": "READY"}]),
    patch("jobs.patch.foreign_id", "/jobs/", [status_item("j_b", "READY")]),
    patch("jobs.patch.huge_id", "/jobs/", [{"id": int(HUGE), "state": "READY"}]),
    patch("jobs.patch.no_id", "/jobs/", [{"state": "READY"}]),
    patch("jobs.patch.empty", "/jobs/", []),
    patch("jobs.patch.not_a_list", "/jobs/", status_item("j_h1", "READY")),
    patch("jobs.patch.over_limit", "/jobs/", [{"id": "{j_h1}", "tags": {"n": str(i)}} for i in range(5001)]),
    patch(
        "jobs.patch.state_data_null",
        "/jobs/",
        [{"id": "{j_h1}", "state": "RUN_DONE", "state_data": None}],
        deliberate=STATE_DATA_NULL,
    ),
    patch(
        "jobs.patch.state_timestamp_bad", "/jobs/", [{"id": "{j_h1}", "state": "RUN_DONE", "state_timestamp": "later"}]
    ),
    patch(
        "jobs.patch.state_timestamp_aware",
        "/jobs/",
        [{"id": "{j_h1}", "state": "RUN_DONE", "state_timestamp": "2024-01-02T03:04:05+02:00"}],
    ),
    patch(
        "jobs.patch.state_timestamp_space",
        "/jobs/",
        [{"id": "{j_h1}", "state": "RUN_ERROR", "state_timestamp": "2024-01-02 03:04:05.123456"}],
    ),
    patch(
        "jobs.patch.state_timestamp_null",
        "/jobs/",
        [{"id": "{j_b}", "state": "PREPROCESSED", "state_timestamp": None}],
        user="bob",
        deliberate="spec §14.3: a null state_timestamp gets 422 or the server's time; upstream stores a NULL "
        "event timestamp and its GET /events/ then answers 500",
    ),
    get("events.list.after_null_timestamp", "/events/", user="bob", note="spec §12.7: upstream answers 500"),
    put("jobs.put.missing", f"/jobs/{MISSING}", {"state": "READY"}),
    put("jobs.put.foreign", "/jobs/{j_b}", {"state": "READY"}),
    put("jobs.put.huge_id", f"/jobs/{HUGE}", {"state": "READY"}),
    put("jobs.put.bad_state", "/jobs/{j_h1}", {"state": "DANCING"}),
    put("jobs.put.list_body", "/jobs/{j_h1}", [{"state": "READY"}]),
    put(
        "jobs.put.state_data_null",
        "/jobs/{j_h1}",
        {"state": "STAGED_IN", "state_data": None},
        deliberate=STATE_DATA_NULL,
    ),
    put("jobs.put.empty", "/jobs/{j_h1}", {}),
    # The 5000 cap on PUT jobs/?filters (5001 matching jobs).
    post("jobs.create.bulk_5000", "/jobs/", [job(f"bulk/{i}", tags={"grp": "bulk"}) for i in range(5000)]),
    post("jobs.create.single", "/jobs/", [job("bulk/5000", tags={"grp": "bulk"})]),
    put("jobs.put_query.over_limit", "/jobs/", {"data": {"n": 1}}, ("tags", "grp:bulk")),
    delete("jobs.delete_query", "/jobs/", ("tags", "grp:bulk")),
    get("jobs.list.count_only", "/jobs/", ("tags", "grp:bulk"), ("limit", "0")),
    # Deletes.
    delete("jobs.delete", "/jobs/{j_coerce_string_gpus}"),
    delete("jobs.delete.again", "/jobs/{j_coerce_string_gpus}"),
    delete("jobs.delete.foreign", "/jobs/{j_b}"),
    delete("jobs.delete.missing", f"/jobs/{MISSING}"),
    delete("jobs.delete.huge_id", f"/jobs/{HUGE}"),
    delete("jobs.delete.session_held", "/jobs/{j_held}", note="spec §14.13: 204, and the job is kept"),
    get("jobs.get.held", "/jobs/{j_held}"),
    delete("jobs.delete_query", "/jobs/", ("tags", "grp:coerce")),
    get("jobs.list.count_only", "/jobs/", ("tags", "grp:coerce"), ("limit", "0")),
    delete("jobs.delete_query.bad_filter", "/jobs/", ("state", "DANCING")),
    delete("jobs.delete_query.no_match", "/jobs/", ("tags", "grp:nothing")),
    delete("jobs.delete_query.all_of_users_jobs", "/jobs/", user="bob"),
    get("jobs.list", "/jobs/", user="bob"),
]
