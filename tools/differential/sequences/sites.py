"""Sites (spec §3), including the site agent's partial `PUT` heartbeats (§11).

Captures: site_a (alice's main site, with transfer locations), site_a2 (alice, minimal), site_a3 (alice,
created with unknown fields; deleted in cleanup), site_b (bob's).
"""

from __future__ import annotations

from tools.differential.sequences.common import HUGE, MISSING, T0, get, post, put
from tools.differential.steps import Step

GLOBUS_UUID = "9d6d99eb-6d04-11e5-ba46-22000b92c6ec"

SITE_A = {
    "name": "site-a",
    "path": "/projects/a/balsam-site",
    "globus_endpoint_id": GLOBUS_UUID,
    "backfill_windows": {},
    "queued_jobs": {},
    "optional_batch_job_params": {"singularity_prime_cache": "no"},
    "allowed_projects": ["datascience"],
    "allowed_queues": {"debug": {"max_nodes": 8, "max_walltime": 60, "max_queued_jobs": 1}},
    "transfer_locations": {"laptop": f"globus://{GLOBUS_UUID}", "hpc": "rsync://user@login.example.org"},
}

QUEUED_JOB = {
    "scheduler_id": 4242,
    "state": "queued",
    "queue": "debug",
    "num_nodes": 2,
    "wall_time_min": 30,
    "project": "datascience",
    "time_remaining_min": 30,
    "queued_time_min": 3,
}

STEPS: list[Step] = [
    post("sites.create", "/sites/", SITE_A, capture={"site_a": "id"}),
    post("sites.create.minimal", "/sites/", {"name": "site-a2", "path": "/projects/a2"}, capture={"site_a2": "id"}),
    post("sites.create", "/sites/", {**SITE_A, "name": "site-b"}, user="bob", capture={"site_b": "id"}),
    post(
        "sites.create.unknown_fields",
        "/sites/",
        {"name": "site-a3", "path": "/projects/a3", "owner_id": "{bob_id}", "id": 1, "bogus": [1, 2]},
        capture={"site_a3": "id"},
    ),
    post("sites.create.duplicate_name", "/sites/", {"name": "site-a", "path": "/elsewhere"}),
    post("sites.create.same_name_other_user", "/sites/", {"name": "site-a2", "path": "/b/a2"}, user="bob"),
    post("sites.create.relative_path", "/sites/", {"name": "rel", "path": "relative/dir"}),
    post("sites.create.missing_name", "/sites/", {"path": "/x"}),
    post("sites.create.name_int", "/sites/", {"name": 123, "path": "/x/int"}, note="pydantic 1 coerces to '123'"),
    post("sites.create.bad_uuid", "/sites/", {"name": "baduuid", "path": "/x", "globus_endpoint_id": "nope"}),
    post(
        "sites.create.bad_transfer_url", "/sites/", {"name": "badurl", "path": "/x", "transfer_locations": {"a": "x"}}
    ),
    post("sites.create.nul_in_name", "/sites/", {"name": "nul\u0000site", "path": "/x"}),
    post(
        "sites.create.allowed_queues_float",
        "/sites/",
        {
            "name": "floatq",
            "path": "/x/floatq",
            "allowed_queues": {"q": {"max_nodes": 8.9, "max_walltime": "60", "max_queued_jobs": 1}},
        },
        note="pydantic 1 truncates 8.9 and reads '60'",
    ),
    post("sites.create.list_body", "/sites/", [{"name": "l", "path": "/l"}]),
    Step("sites.create.empty_body", "POST", "/sites/", raw_body=b""),
    Step("sites.create.malformed_json", "POST", "/sites/", raw_body=b"{not json"),
    # Reads and filters (the client's `Site.objects.filter(...)`).
    get("sites.list", "/sites/"),
    get("sites.list", "/sites/", user="bob"),
    get("sites.list.by_name", "/sites/", ("name", "site-a")),
    get("sites.list.by_path", "/sites/", ("path", "/projects")),
    get("sites.list.by_ids", "/sites/", ("id", "{site_a}"), ("id", "{site_a2}"), ("id", "{site_b}")),
    get("sites.list.refreshed_after", "/sites/", ("last_refresh_after", T0)),
    get("sites.list.refreshed_after_iso_offset", "/sites/", ("last_refresh_after", "2024-01-02T03:04:05+02:00")),
    get("sites.list.bad_datetime", "/sites/", ("last_refresh_after", "yesterday")),
    get("sites.list.bad_id", "/sites/", ("id", "abc")),
    get("sites.list.unknown_param", "/sites/", ("bogus", "1")),
    get("sites.get", "/sites/{site_a}"),
    get("sites.get.foreign", "/sites/{site_b}"),
    get("sites.get.missing", f"/sites/{MISSING}"),
    get("sites.get.huge_id", f"/sites/{HUGE}"),
    get("sites.get.non_int_id", "/sites/abc"),
    get("sites.get.negative_id", "/sites/-1"),
    # The site agent's heartbeats: only the changed fields (spec §11).
    put(
        "sites.put.heartbeat_backfill",
        "/sites/{site_a}",
        {
            "backfill_windows": {"debug": [{"num_nodes": 4, "wall_time_min": 25}]},
        },
    ),
    put("sites.put.heartbeat_queued_jobs", "/sites/{site_a}", {"queued_jobs": {"4242": QUEUED_JOB}}),
    put(
        "sites.put.heartbeat_allowed",
        "/sites/{site_a}",
        {
            "allowed_projects": ["datascience", "other"],
            "allowed_queues": {"debug": {"max_nodes": 8, "max_walltime": 60, "max_queued_jobs": 2}},
            "optional_batch_job_params": {"mig_count": "2"},
        },
    ),
    put("sites.put.transfer_locations", "/sites/{site_a}", {"transfer_locations": SITE_A["transfer_locations"]}),
    put("sites.put.empty", "/sites/{site_a}", {}),
    put(
        "sites.put.ignored_fields",
        "/sites/{site_a}",
        {
            "id": "{site_b}",
            "owner_id": "{bob_id}",
            "creation_date": T0,
            "last_refresh": T0,
        },
    ),
    put(
        "sites.put.backfill_float",
        "/sites/{site_a}",
        {
            "backfill_windows": {"debug": [{"num_nodes": 4.7, "wall_time_min": "25"}]},
        },
        note="pydantic 1 truncates / reads int strings",
    ),
    put("sites.put.backfill_bad", "/sites/{site_a}", {"backfill_windows": {"debug": [{"num_nodes": "many"}]}}),
    put("sites.put.queued_job_bad_state", "/sites/{site_a}", {"queued_jobs": {"1": {**QUEUED_JOB, "state": "x"}}}),
    put("sites.put.rename_duplicate", "/sites/{site_a2}", {"name": "site-a"}),
    put("sites.put.rename", "/sites/{site_a2}", {"name": "site-a2-renamed"}),
    put("sites.put.relative_path", "/sites/{site_a2}", {"path": "not/absolute"}),
    put("sites.put.null_name", "/sites/{site_a2}", {"name": None}),
    put("sites.put.null_dict", "/sites/{site_a2}", {"backfill_windows": None}),
    put("sites.put.foreign", "/sites/{site_b}", {"name": "stolen"}),
    put("sites.put.missing", f"/sites/{MISSING}", {"name": "ghost"}),
    put("sites.put.nul_in_path", "/sites/{site_a2}", {"path": "/a/\u0000"}),
    get("sites.get.after_updates", "/sites/{site_a}"),
    get("sites.get.after_updates", "/sites/{site_b}", user="bob"),
]
