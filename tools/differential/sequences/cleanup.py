"""Deletes and their cascades (spec §3, §8): sessions releasing RUNNING jobs, then whole sites."""

from __future__ import annotations

from tools.differential.sequences.batch_jobs import batch_job
from tools.differential.sequences.common import MISSING, delete, get, post, put
from tools.differential.sequences.sessions import acquire_body
from tools.differential.steps import Step

EXPIRED_SESSION = (
    "spec §8, §12.15, §12.16: a session whose batch job is finished has expired; we expire it on its next use "
    "(404, as for any swept session), where upstream's sweep is lazy (once a minute per user and worker, on "
    "create or tick only) and its acquire never checks"
)

STEPS: list[Step] = [
    # A batch job that reaches `finished` expires its sessions (spec §8).
    post("batch_jobs.create", "/batch-jobs/", batch_job(), capture={"bj_fin": "id"}),
    post(
        "sessions.create.with_batch_job",
        "/sessions/",
        {"site_id": "{site_a}", "batch_job_id": "{bj_fin}"},
        capture={"s_fin": "id"},
    ),
    put("batch_jobs.put.finished", "/batch-jobs/{bj_fin}", {"state": "finished"}),
    post("sessions.acquire.batch_job_finished", "/sessions/{s_fin}", acquire_body(), deliberate=EXPIRED_SESSION),
    put("sessions.tick.batch_job_finished", "/sessions/{s_fin}", deliberate=EXPIRED_SESSION),
    delete("sessions.delete.batch_job_finished", "/sessions/{s_fin}", deliberate=EXPIRED_SESSION),
    delete("sessions.delete.with_running_job", "/sessions/{s_serial}", note="RUNNING -> RUN_TIMEOUT, unlocked"),
    get("jobs.get.after_session_delete", "/jobs/{j_held}"),
    get("events.list.by_job", "/events/", ("job_id", "{j_held}"), ("ordering", "timestamp")),
    delete("sessions.delete", "/sessions/{s_proc}"),
    delete("sessions.delete", "/sessions/{s_mpi}"),
    delete("sessions.delete", "/sessions/{s_b}", user="bob"),
    get("sessions.list", "/sessions/"),
    delete("sites.delete", "/sites/{site_a3}"),
    get("sites.get.deleted", "/sites/{site_a3}"),
    delete("sites.delete.again", "/sites/{site_a3}"),
    delete("sites.delete.foreign", "/sites/{site_b}"),
    delete("sites.delete.missing", f"/sites/{MISSING}"),
    delete("sites.delete.cascade", "/sites/{site_a}"),
    get("jobs.list.after_site_delete", "/jobs/", ("site_id", "{site_a}"), ("limit", "0")),
    get("jobs.get.after_site_delete", "/jobs/{j_plain}"),
    get("apps.list.after_site_delete", "/apps/", ("site_id", "{site_a}")),
    get("batch_jobs.list.after_site_delete", "/batch-jobs/", ("site_id", "{site_a}")),
    get("transfers.list.after_site_delete", "/transfers/", ("site_id", "{site_a}")),
    get("events.list.after_site_delete", "/events/", ("job_id", "{j_plain}")),
    get("sessions.list.after_site_delete", "/sessions/"),
    delete("sites.delete", "/sites/{site_b}", user="bob"),
    get("sites.list", "/sites/"),
    get("sites.list", "/sites/", user="bob"),
]
