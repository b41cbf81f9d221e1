"""Job updates and the state machine (spec §5.4, §5.5, §12.1, §12.3, §12.4, §12.13)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from balsam.server.crud.transactions import run_write
from tests.jobs_helpers import create_jobs, events_of, get_job, job_spec, make_site_app, patch

IN = {"input": {"location_alias": "laptop", "path": "/remote/in.dat"}}
OUT = {"output": {"location_alias": "archive", "path": "/remote/out"}}


def _finish(client: TestClient, job_id: int) -> None:
    """Drive a STAGED_IN job through the conventional flow to POSTPROCESSED."""
    for state in ("PREPROCESSED", "RUNNING", "RUN_DONE", "POSTPROCESSED"):
        patch(client, [{"id": job_id, "state": state}])


def test_heterogeneous_patch_of_1000_items_lands_every_field(make_user: Callable[[str], TestClient]) -> None:
    alice = make_user("alice")
    _site, app_id = make_site_app(alice)
    jobs = create_jobs(alice, [job_spec(app_id, f"w{i}") for i in range(1000)])
    variants: list[Callable[[int], dict[str, Any]]] = [
        lambda i: {"state": "PREPROCESSED", "state_data": {"i": i}, "return_code": i},
        lambda i: {"data": {"n": i}, "num_nodes": 1 + i % 7},
        lambda i: {"serialized_return_value": f"r{i}", "tags": {"k": str(i)}, "pending_file_cleanup": False},
        lambda i: {"workdir": f"moved/{i}", "gpus_per_rank": i / 4, "launch_params": {"cpu_bind": str(i)}},
        lambda i: {"wall_time_min": i, "node_packing_count": 2, "serialized_exception": f"e{i}", "return_code": None},
        lambda i: {"ranks_per_node": 3, "threads_per_rank": 4, "threads_per_core": 2, "serialized_parameters": "p"},
    ]
    items = [{"id": job["id"], **variants[i % len(variants)](i)} for i, job in enumerate(jobs)]
    assert patch(alice, items) == 1000
    listing = {j["id"]: j for j in alice.get("/jobs/").json()["results"]}
    for item in items:
        stored = listing[item["id"]]
        for key, value in item.items():
            if key == "state_data":
                continue
            assert stored[key] == value, (item, key, stored[key])
        untouched = {"state": "STAGED_IN", "num_nodes": 1, "data": {}, "tags": {}} if "data" not in item else {}
        for key, value in untouched.items():
            if key not in item:
                assert stored[key] == value, (item, key)
    first = jobs[0]["id"]
    assert events_of(alice, first)[-1]["data"] == {"i": 0}


def test_state_side_effects_and_events(make_user: Callable[[str], TestClient], engine: Engine) -> None:
    alice = make_user("alice")
    _site, app_id = make_site_app(alice)
    staged, plain, with_out = create_jobs(
        alice, [job_spec(app_id, "a", transfers=IN), job_spec(app_id, "b"), job_spec(app_id, "c", transfers=OUT)]
    )
    assert staged["state"] == "READY"
    # Client timestamps and state_data go into the event; null timestamp → server time, null data → {}.
    patch(
        alice,
        [
            {
                "id": plain["id"],
                "state": "PREPROCESSED",
                "state_timestamp": "2024-01-02 03:04:05.123456",
                "state_data": {"why": "test"},
            },
            {"id": with_out["id"], "state": "PREPROCESSED", "state_timestamp": None, "state_data": None},
        ],
    )
    ev = events_of(alice, plain["id"])[-1]
    assert ev["timestamp"] == "2024-01-02T03:04:05.123456" and ev["data"] == {"why": "test"}
    assert (ev["from_state"], ev["to_state"]) == ("STAGED_IN", "PREPROCESSED")
    ev2 = events_of(alice, with_out["id"])[-1]
    assert ev2["data"] == {} and ev2["timestamp"] is not None
    # Same state again: no event.
    before = len(events_of(alice, plain["id"]))
    patch(alice, [{"id": plain["id"], "state": "PREPROCESSED"}])
    assert len(events_of(alice, plain["id"])) == before
    # A session-held job is released by any non-RUNNING state, kept by RUNNING.
    with engine.begin() as conn:
        sid = conn.execute(
            text("INSERT INTO sessions (site_id) SELECT site_id FROM apps LIMIT 1 RETURNING id")
        ).scalar()
        conn.execute(
            text("INSERT INTO job_leases (job_id, session_id) VALUES (:a, :s), (:b, :s)"),
            {"s": sid, "a": plain["id"], "b": with_out["id"]},
        )
    patch(alice, [{"id": plain["id"], "state": "RUNNING"}, {"id": with_out["id"], "state": "RUNNING"}])
    assert get_job(alice, plain["id"])["session_id"] == sid
    patch(alice, [{"id": plain["id"], "state": "RUN_DONE"}])
    assert get_job(alice, plain["id"])["session_id"] is None
    # POSTPROCESSED with no out items → JOB_FINISHED "Skipped stage out".
    patch(alice, [{"id": plain["id"], "state": "POSTPROCESSED"}])
    assert get_job(alice, plain["id"])["state"] == "JOB_FINISHED"
    assert events_of(alice, plain["id"])[-1]["data"] == {"message": "Skipped stage out"}
    # POSTPROCESSED with an out item: stays, and the out item becomes pending.
    patch(alice, [{"id": with_out["id"], "state": "RUN_DONE"}])
    patch(alice, [{"id": with_out["id"], "state": "POSTPROCESSED"}])
    assert get_job(alice, with_out["id"])["state"] == "POSTPROCESSED"
    (item,) = alice.get("/transfers/", params={"job_id": with_out["id"]}).json()["results"]
    assert item["state"] == "pending"
    # STAGED_OUT is stored as JOB_FINISHED.
    patch(alice, [{"id": with_out["id"], "state": "STAGED_OUT"}])
    assert get_job(alice, with_out["id"])["state"] == "JOB_FINISHED"
    # READY with pending in items stays READY; after the stage-in finishes, the job moves on.
    (in_item,) = alice.get("/transfers/", params={"job_id": staged["id"]}).json()["results"]
    assert alice.put(f"/transfers/{in_item['id']}", json={"state": "active", "task_id": "t1"}).json()["task_id"] == "t1"
    assert get_job(alice, staged["id"])["state"] == "READY"
    done = alice.put(f"/transfers/{in_item['id']}", json={"state": "done", "transfer_info": {"bytes": 3}})
    assert done.status_code == 200 and done.json()["transfer_info"] == {"bytes": 3}
    assert get_job(alice, staged["id"])["state"] == "STAGED_IN"
    assert events_of(alice, staged["id"])[-1]["from_state"] == "READY"


def test_free_transitions_and_ignored_read_only_fields(make_user: Callable[[str], TestClient]) -> None:
    """Any state may follow any other (spec §14.10) and read-only fields are ignored (§14.12): upstream answers
    200 to both, and the published client would retry a 4xx for minutes."""
    alice = make_user("alice")
    _site, app_id = make_site_app(alice)
    a, b, c = create_jobs(alice, [job_spec(app_id, "a"), job_spec(app_id, "b"), job_spec(app_id, "c")])
    # STAGED_IN -> RUN_DONE and STAGED_IN -> POSTPROCESSED (upstream's own client tests do the latter).
    resp = alice.patch("/jobs/", json=[{"id": a["id"], "state": "RUN_DONE"}, {"id": b["id"], "state": "POSTPROCESSED"}])
    assert resp.status_code == 200 and resp.json() == 2
    assert get_job(alice, a["id"])["state"] == "RUN_DONE"
    assert get_job(alice, b["id"])["state"] == "JOB_FINISHED"  # no out items: the §5.5 swap still applies
    assert [(e["from_state"], e["to_state"]) for e in events_of(alice, a["id"])][-1] == ("STAGED_IN", "RUN_DONE")
    # FAILED -> RUNNING, then -> CREATED, then back to a runnable state: all stored, one event each.
    for state in ("FAILED", "RUNNING", "CREATED", "RESTART_READY"):
        assert alice.put(f"/jobs/{a['id']}", json={"state": state}).json() == 1
        assert get_job(alice, a["id"])["state"] == state
    assert [e["to_state"] for e in events_of(alice, a["id"])][-4:] == ["FAILED", "RUNNING", "CREATED", "RESTART_READY"]
    # A state that is not a JobState is still a 422; a null state means "no state given", as upstream.
    assert alice.put(f"/jobs/{a['id']}", json={"state": "DANCING"}).status_code == 422
    events_before = len(events_of(alice, a["id"]))
    assert patch(alice, [{"id": a["id"], "state": None, "tags": {"n": "1"}}]) == 1
    assert alice.put(f"/jobs/{a['id']}", json={"state": None}).json() == 1
    after_null = get_job(alice, a["id"])
    assert after_null["state"] == "RESTART_READY" and after_null["tags"] == {"n": "1"}
    assert len(events_of(alice, a["id"])) == events_before
    # Read-only fields: ignored whatever value is sent; the other keys of the item still land.
    before = get_job(alice, c["id"])
    ignored = {
        "app_id": app_id + 1,
        "parent_ids": [a["id"]],
        "session_id": 5,
        "transfers": {"x": {"location_alias": "nowhere", "path": "/p"}},
        "last_update": "2001-01-01T00:00:00",
        "id": 12345,
    }
    assert alice.put(f"/jobs/{c['id']}", json={**ignored, "workdir": "c2"}).json() == 1
    assert patch(alice, [{**ignored, "id": c["id"], "tags": {"k": "v"}}]) == 1
    after = get_job(alice, c["id"])
    assert after["workdir"] == "c2" and after["tags"] == {"k": "v"}
    for key in ("app_id", "parent_ids", "session_id", "id"):
        assert after[key] == before[key], key
    assert after["last_update"] > before["last_update"]
    assert alice.get("/transfers/", params={"job_id": c["id"]}).json()["count"] == 0
    # Errors of the bulk routes.
    assert (
        alice.patch("/jobs/", json=[{"id": a["id"]}, {"id": a["id"]}]).json()["detail"]
        == "Duplicate Job ID keys provided"
    )
    assert (
        alice.patch("/jobs/", json=[{"id": 999999, "workdir": "x"}]).json()["detail"] == "Could not find some Job IDs"
    )
    assert alice.put("/jobs/999999", json={"workdir": "x"}).status_code == 400
    assert alice.patch("/jobs/", json=[{"id": i} for i in range(1, 5002)]).status_code == 400
    assert alice.patch("/jobs/", json=[]).json() == 0
    assert alice.put(f"/jobs/{b['id']}", json={"batch_job_id": 424242}).status_code == 400  # no such batch job
    # Another user's batch job is stored, as upstream does (spec §14.13): every list stays owner-scoped.
    bob = make_user("bob")
    bob_site, _bob_app = make_site_app(bob)
    bob_bj = bob.post(
        "/batch-jobs/",
        json={"site_id": bob_site, "project": "p", "queue": "q", "num_nodes": 1, "wall_time_min": 5, "job_mode": "mpi"},
    ).json()
    assert alice.put(f"/jobs/{b['id']}", json={"batch_job_id": bob_bj["id"]}).json() == 1
    assert get_job(alice, b["id"])["batch_job_id"] == bob_bj["id"]
    assert bob.get("/jobs/", params={"batch_job_id": bob_bj["id"]}).json()["count"] == 0


def test_put_by_query_heterogeneous_current_states(make_user: Callable[[str], TestClient]) -> None:
    alice = make_user("alice")
    _site, app_id = make_site_app(alice)
    jobs = create_jobs(alice, [job_spec(app_id, f"w{i}", tags={"g": "x"}) for i in range(4)])
    patch(alice, [{"id": jobs[0]["id"], "state": "PREPROCESSED"}])
    # Some already PREPROCESSED: their other fields still land, and each changing job gets its state.
    resp = alice.put("/jobs/", params={"tags": "g:x"}, json={"state": "PREPROCESSED", "data": {"d": 1}})
    assert resp.status_code == 200 and resp.json() == 4
    for job in alice.get("/jobs/").json()["results"]:
        assert job["state"] == "PREPROCESSED" and job["data"] == {"d": 1}
    assert len(events_of(alice, jobs[0]["id"])) == 2


def test_three_level_dag_released_level_by_level(make_user: Callable[[str], TestClient]) -> None:
    alice = make_user("alice")
    _site, app_id = make_site_app(alice)
    root1, root2 = create_jobs(alice, [job_spec(app_id, "r1"), job_spec(app_id, "r2", transfers=OUT)])
    (mid,) = create_jobs(alice, [job_spec(app_id, "m", parent_ids=[root1["id"], root2["id"]], transfers=IN)])
    (leaf,) = create_jobs(alice, [job_spec(app_id, "l", parent_ids=[mid["id"]])])
    assert mid["state"] == leaf["state"] == "AWAITING_PARENTS"
    _finish(alice, root1["id"])
    assert get_job(alice, root1["id"])["state"] == "JOB_FINISHED"
    assert get_job(alice, mid["id"])["state"] == "AWAITING_PARENTS"  # root2 not finished yet
    # root2 finishes through stage-out completion (transfer PATCH), which must release mid.
    _finish(alice, root2["id"])
    assert get_job(alice, root2["id"])["state"] == "POSTPROCESSED"
    (out_item,) = alice.get("/transfers/", params={"job_id": root2["id"], "direction": "out"}).json()["results"]
    resp = alice.patch("/transfers/", json=[{"id": out_item["id"], "state": "done"}])
    assert resp.status_code == 200 and resp.json()[0]["state"] == "done"
    assert get_job(alice, root2["id"])["state"] == "JOB_FINISHED"
    # mid has a pending stage-in: released to READY; leaf still waits.
    assert get_job(alice, mid["id"])["state"] == "READY"
    assert events_of(alice, mid["id"])[-1]["data"] == {"message": "All parents finished"}
    assert get_job(alice, leaf["id"])["state"] == "AWAITING_PARENTS"
    (in_item,) = alice.get("/transfers/", params={"job_id": mid["id"]}).json()["results"]
    alice.patch("/transfers/", json=[{"id": in_item["id"], "state": "done"}])
    assert get_job(alice, mid["id"])["state"] == "STAGED_IN"
    _finish(alice, mid["id"])
    assert get_job(alice, mid["id"])["state"] == "JOB_FINISHED"
    assert get_job(alice, leaf["id"])["state"] == "STAGED_IN"
    assert events_of(alice, leaf["id"])[-1]["data"] == {"message": "Skipped stage in"}
    # A child created after its parents finished starts runnable.
    (late,) = create_jobs(alice, [job_spec(app_id, "late", parent_ids=[mid["id"]])])
    assert late["state"] == "STAGED_IN"


def test_deleted_parent_counts_as_finished(make_user: Callable[[str], TestClient]) -> None:
    alice = make_user("alice")
    _site, app_id = make_site_app(alice)
    p1, p2 = create_jobs(alice, [job_spec(app_id, "p1"), job_spec(app_id, "p2")])
    (child,) = create_jobs(alice, [job_spec(app_id, "c", parent_ids=[p1["id"], p2["id"]])])
    _finish(alice, p1["id"])
    assert alice.delete(f"/jobs/{p2['id']}").status_code == 204
    assert get_job(alice, child["id"])["state"] == "STAGED_IN"
    assert get_job(alice, child["id"])["parent_ids"] == sorted([p1["id"], p2["id"]])


def test_overlapping_bulk_updates_do_not_deadlock(make_user: Callable[[str], TestClient]) -> None:
    alice = make_user("alice")
    _site, app_id = make_site_app(alice)
    jobs = create_jobs(alice, [job_spec(app_id, f"w{i}") for i in range(600)])
    ids = [j["id"] for j in jobs]
    other = make_user("alice2")  # a second client (its own app and pool) for the same data
    other.headers["Authorization"] = alice.headers["Authorization"]
    results: dict[str, int] = {}

    def run(name: str, client: TestClient, order: list[int], rounds: int) -> None:
        for r in range(rounds):
            resp = client.patch("/jobs/", json=[{"id": i, "data": {name: r}} for i in order])
            results[f"{name}{r}"] = resp.status_code

    # Opposite item orders and overlapping id sets: without a consistent lock order these deadlock.
    t1 = threading.Thread(target=run, args=("a", alice, ids[:450], 6))
    t2 = threading.Thread(target=run, args=("b", other, list(reversed(ids[150:])), 6))
    t1.start()
    t2.start()
    t1.join(120)
    t2.join(120)
    assert len(results) == 12 and set(results.values()) == {200}, results


def test_put_by_query_over_the_cap_is_rejected_before_locking(make_user: Callable[[str], TestClient]) -> None:
    alice = make_user("alice")
    _site, app_id = make_site_app(alice)
    create_jobs(alice, [job_spec(app_id, f"a{i}") for i in range(5000)])
    create_jobs(alice, [job_spec(app_id, "last")])
    resp = alice.put("/jobs/", json={"state": "FAILED"})
    assert resp.status_code == 400 and "5000" in resp.json()["detail"]
    assert alice.get("/jobs/", params={"state": "FAILED", "limit": 0}).json()["count"] == 0
    assert alice.put("/jobs/", params={"workdir__contains": "last"}, json={"state": "FAILED"}).json() == 1


def test_deadlock_victims_are_retried(engine: Engine) -> None:
    """run_write re-runs a transaction PostgreSQL aborted with 40P01; other errors propagate at once."""
    attempts: list[int] = []

    def work(db: Session, code: str, fail_times: int) -> int:
        attempts.append(1)
        if len(attempts) <= fail_times:
            db.execute(text(f"DO $$ BEGIN RAISE EXCEPTION 'boom' USING ERRCODE = '{code}'; END $$"))
        return int(db.execute(text("SELECT 42")).scalar_one())

    with Session(engine) as db:
        assert run_write(db, lambda: work(db, "40P01", 1)) == 42
        assert len(attempts) == 2
        attempts.clear()
        with pytest.raises(DBAPIError):
            run_write(db, lambda: work(db, "40P01", 5))
        assert len(attempts) == 3
        attempts.clear()
        with pytest.raises(DBAPIError):
            run_write(db, lambda: work(db, "23505", 1))
        assert len(attempts) == 1


def test_requested_ready_skips_stage_in_when_nothing_is_pending(make_user: Callable[[str], TestClient]) -> None:
    alice = make_user("alice")
    _site, app_id = make_site_app(alice)
    plain, staged = create_jobs(alice, [job_spec(app_id, "p"), job_spec(app_id, "s", transfers=IN)])
    patch(alice, [{"id": plain["id"], "state": "FAILED"}, {"id": staged["id"], "state": "FAILED"}])
    # Re-run: READY is requested; with no pending `in` item the job is stored STAGED_IN (one event).
    patch(
        alice,
        [{"id": plain["id"], "state": "READY", "state_data": {"by": "op"}}, {"id": staged["id"], "state": "READY"}],
    )
    assert get_job(alice, plain["id"])["state"] == "STAGED_IN"
    last = events_of(alice, plain["id"])[-1]
    assert (last["from_state"], last["to_state"]) == ("FAILED", "STAGED_IN")
    assert last["data"] == {"by": "op", "message": "Skipped stage in"}
    assert get_job(alice, staged["id"])["state"] == "READY"  # its stage-in is still pending
    assert events_of(alice, staged["id"])[-1]["to_state"] == "READY"
