"""The job event log (spec §9): every filter, including the client's `EventLog.objects.filter(...)`."""

from __future__ import annotations

from tools.differential.sequences.common import T0, get
from tools.differential.steps import Step

STEPS: list[Step] = [
    get("events.list", "/events/"),
    get("events.list", "/events/", user="bob"),
    get("events.list.by_job", "/events/", ("job_id", "{j_plain}"), ("ordering", "timestamp")),
    get("events.list.by_jobs", "/events/", ("job_id", "{j_child}"), ("job_id", "{j_child2}"), ("job_id", "{j_b}")),
    get("events.list.by_to_state", "/events/", ("to_state", "JOB_FINISHED")),
    get("events.list.by_from_state", "/events/", ("from_state", "CREATED"), ("tags", "grp:one")),
    get(
        "events.list.by_to_state_running",
        "/events/",
        ("to_state", "RUNNING"),
        ("ordering", "timestamp"),
        note="the client's utilisation report",
    ),
    get("events.list.ordering_desc", "/events/", ("ordering", "-timestamp"), ("tags", "grp:kids")),
    get("events.list.bad_ordering", "/events/", ("ordering", "id")),
    get("events.list.by_data", "/events/", ("data", "message:Skipped stage in")),
    get("events.list.by_data_no_colon", "/events/", ("data", "message")),
    get("events.list.by_tags", "/events/", ("tags", "kind:mpi")),
    get("events.list.timestamp_after", "/events/", ("timestamp_after", T0), ("tags", "grp:one")),
    get("events.list.timestamp_before", "/events/", ("timestamp_before", T0)),
    get("events.list.bad_timestamp", "/events/", ("timestamp_after", "now")),
    get("events.list.by_batch_job", "/events/", ("batch_job_id", "{bj1}"), note="spec §14.8"),
    get("events.list.by_batch_job_paged", "/events/", ("batch_job_id", "{bj1}"), ("limit", "2"), ("offset", "1")),
    get("events.list.by_scheduler_id", "/events/", ("scheduler_id", "4242"), note="spec §12.2"),
    get("events.list.bad_job_id", "/events/", ("job_id", "abc")),
    get("events.list.paged", "/events/", ("limit", "3"), ("offset", "2"), ("ordering", "timestamp")),
    get("events.get_item", "/events/1", note="no item route"),
]
