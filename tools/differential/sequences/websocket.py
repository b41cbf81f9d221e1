"""The `/subscribe-user` websocket (spec §10): a token frame, then a request that publishes a message."""

from __future__ import annotations

from tools.differential.sequences.batch_jobs import batch_job
from tools.differential.sequences.common import delete, post, put
from tools.differential.steps import Step

# The peer runs upstream on Python 3.11, where its Redis client (aredis) passes `loop=` to asyncio and
# fails: its websocket closes right after the token frame. Its messages cannot be compared here.
UPSTREAM_WS_BROKEN = (
    "the upstream peer's websocket cannot subscribe (aredis passes loop= to asyncio, gone since Python 3.10), "
    "so it closes without a message; ours follows spec §10"
)


def _subscribe(name: str, trigger: Step | None, first: str | None = "{token_alice}", note: str = "") -> Step:
    deliberate = UPSTREAM_WS_BROKEN if first == "{token_alice}" else None
    return Step(
        name, "WS", "/subscribe-user", ws_first_frame=first, ws_trigger=trigger, note=note, deliberate=deliberate
    )


STEPS: list[Step] = [
    _subscribe("ws.site_update", put("sites.put.heartbeat_backfill", "/sites/{site_a}", {"backfill_windows": {}})),
    _subscribe(
        "ws.batch_job_create",
        post("batch_jobs.create", "/batch-jobs/", batch_job(), capture={"bj_ws": "id"}),
    ),
    _subscribe("ws.batch_job_delete", delete("batch_jobs.delete", "/batch-jobs/{bj_ws}")),
    _subscribe("ws.job_delete", delete("jobs.delete", "/jobs/{j_h2}")),
    _subscribe(
        "ws.other_users_change",
        put("sites.put.empty", "/sites/{site_b}", {}, user="bob"),
        note="bob's change must not reach alice",
    ),
    _subscribe("ws.bad_token", None, first="not-a-token"),
    _subscribe(
        "ws.bearer_prefix",
        put("sites.put.empty", "/sites/{site_a}", {}),
        first="Bearer {token_alice}",
        note="spec §10: the first frame is the bare JWT; ours also takes the `Bearer ` form, upstream closes 1008",
    ),
    _subscribe("ws.no_token_frame", None, first=None),
]
