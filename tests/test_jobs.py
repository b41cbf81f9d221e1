"""Jobs (spec §5): bulk create, reads and filters, updates, deletes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC

from fastapi.testclient import TestClient
from sqlalchemy import Engine, literal, select, text

from balsam.server.schemas.jobs import JOB_OUT_FIELDS
from tests.jobs_helpers import create_jobs, get_job, job_spec, make_site_app, patch


def test_bulk_create_shapes_and_initial_states(make_user: Callable[[str], TestClient]) -> None:
    alice = make_user("alice")
    _site_id, app_id = make_site_app(alice)
    specs = [
        job_spec(app_id, "plain", tags={"exp": "a", "n": 1}, num_nodes=2, gpus_per_rank=0.5),
        job_spec(app_id, "staged", transfers={"input": {"location_alias": "laptop", "path": "/d/in.dat"}}),
        job_spec(app_id, "outonly", transfers={"output": {"location_alias": "archive", "path": "/d/out"}}),
    ]
    created = create_jobs(alice, specs)
    assert [j["workdir"] for j in created] == ["plain", "staged", "outonly"]
    assert [j["state"] for j in created] == ["STAGED_IN", "READY", "STAGED_IN"]
    assert set(created[0]) == set(JOB_OUT_FIELDS) - {"session_id"}
    assert created[0]["tags"] == {"exp": "a", "n": "1"} and created[0]["num_nodes"] == 2
    assert created[0]["pending_file_cleanup"] is True and created[0]["batch_job_id"] is None
    assert created[0]["last_update"].endswith("+00:00")  # spec §14.11
    fetched = get_job(alice, created[0]["id"])
    assert set(fetched) == set(JOB_OUT_FIELDS) and fetched["session_id"] is None
    assert fetched["last_update"] == created[0]["last_update"]
    # The list (row_to_json of the whole row) carries exactly the same keys and values.
    listed = alice.get("/jobs/", params={"id": created[0]["id"]}).json()["results"]
    assert listed == [fetched]
    child = create_jobs(
        alice, [job_spec(app_id, "child", parent_ids=[created[1]["id"], created[0]["id"], created[1]["id"]])]
    )[0]
    assert child["state"] == "AWAITING_PARENTS" and child["parent_ids"] == sorted([created[0]["id"], created[1]["id"]])
    transfers = alice.get("/transfers/", params={"job_id": created[1]["id"]}).json()["results"]
    assert [(t["direction"], t["state"], t["local_path"], t["remote_path"]) for t in transfers] == [
        ("in", "pending", "in.dat", "/d/in.dat")
    ]
    assert alice.post("/jobs/", json=[]).json() == []
    patch(alice, [{"id": created[0]["id"], "state": "PREPROCESSED"}])


def test_bulk_create_errors_are_all_or_nothing(make_user: Callable[[str], TestClient]) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    _site, app_id = make_site_app(alice)
    _bsite, bob_app = make_site_app(bob)
    too_many = [job_spec(app_id, f"w{i}") for i in range(5001)]
    resp = alice.post("/jobs/", json=too_many)
    assert resp.status_code == 400 and "more than 5000" in resp.json()["detail"]
    assert alice.get("/jobs/", params={"limit": 0}).json() == {"count": 0, "results": []}
    assert alice.post("/jobs/", json=[job_spec(bob_app, "x")]).status_code == 404
    assert alice.post("/jobs/", json=[job_spec(app_id, "x", parent_ids=[999])]).status_code == 404
    dup = alice.post("/jobs/", json=[job_spec(app_id, "same"), job_spec(app_id, "same")])
    assert dup.status_code == 400 and "unique" in dup.json()["detail"]
    bad_slot = alice.post(
        "/jobs/", json=[job_spec(app_id, "a", transfers={"nope": {"location_alias": "laptop", "path": "/x"}})]
    )
    assert bad_slot.status_code == 400 and bad_slot.json()["detail"] == "App sim has no Transfer slot named nope"
    bad_alias = alice.post(
        "/jobs/", json=[job_spec(app_id, "a", transfers={"input": {"location_alias": "zz", "path": "/x"}})]
    )
    assert bad_alias.status_code == 400 and bad_alias.json()["detail"] == "Site has no Transfer URL named zz"
    # One bad item among good ones: nothing is created.
    assert alice.post("/jobs/", json=[job_spec(app_id, "ok"), job_spec(bob_app, "bad")]).status_code == 404
    assert alice.get("/jobs/", params={"limit": 0}).json()["count"] == 0
    assert alice.get("/events/").json()["count"] == 0


def test_malformed_bodies_get_4xx(make_user: Callable[[str], TestClient]) -> None:
    alice = make_user("alice")
    _site, app_id = make_site_app(alice)
    job = create_jobs(alice, [job_spec(app_id, "w")])[0]
    bad_creates: list[object] = [
        {"app_id": app_id, "workdir": "w"},  # not a list
        [{"app_id": app_id}],
        [job_spec(app_id, "/abs")],
        [job_spec(app_id, "w\u0000")],
        [job_spec(app_id, "w", tags={"k": "v\u0000"})],
        [job_spec(app_id, "w", tags={"k": {"nested": 1}})],
        [job_spec(app_id, "w", return_code=2**40)],
        [job_spec(app_id, "w", num_nodes="many")],
        [job_spec(app_id, "w", serialized_parameters="x" * 512001)],
        [job_spec(app_id, "w", data={"k": "\u0000"})],
        [job_spec(2**70, "w")],
        [job_spec(app_id, "w", transfers={"input": {"location_alias": "laptop", "path": "rel"}})],
    ]
    for body in bad_creates:
        resp = alice.post("/jobs/", json=body)
        assert resp.status_code == 422, (body, resp.status_code, resp.text)
    assert alice.post("/jobs/", content=b"{not json", headers={"content-type": "application/json"}).status_code == 422
    assert alice.post("/jobs/", content=b"").status_code == 422
    for item in [
        {"id": job["id"], "state": "NOPE"},
        {"id": job["id"], "return_code": 2**31},
        {"id": job["id"], "workdir": None},
        {"id": job["id"], "data": "str"},
        {"id": "abc"},
        {"state": "FAILED"},
    ]:
        assert alice.patch("/jobs/", json=[item]).status_code == 422, item
    assert alice.patch("/jobs/", json={"id": job["id"]}).status_code == 422
    assert alice.put(f"/jobs/{job['id']}", json={"num_nodes": 2**31}).status_code == 422
    assert alice.put(f"/jobs/{job['id']}", json=[1, 2]).status_code == 422
    assert alice.get("/jobs/", params={"state": "BOGUS"}).status_code == 422
    assert alice.get("/jobs/", params={"app_id": "x"}).status_code == 422
    assert alice.get("/jobs/", params={"ordering": "secret"}).status_code == 422
    assert get_job(alice, job["id"])["num_nodes"] == 1


def test_job_filters_ordering_and_paging(make_user: Callable[[str], TestClient]) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    site_id, app_id = make_site_app(alice)
    site2, app2 = make_site_app(alice, "other")
    make_site_app(bob)
    jobs = create_jobs(alice, [job_spec(app_id, f"run_{i}", tags={"g": str(i % 2), "x": "y"}) for i in range(5)])
    (child,) = create_jobs(alice, [job_spec(app2, "child%", parent_ids=[jobs[0]["id"]])])
    patch(alice, [{"id": jobs[1]["id"], "state": "PREPROCESSED", "pending_file_cleanup": False}])

    def ids(**params: object) -> list[int]:
        resp = alice.get("/jobs/", params=params)  # type: ignore[arg-type]
        assert resp.status_code == 200, resp.text
        return [j["id"] for j in resp.json()["results"]]

    all_ids = [j["id"] for j in jobs] + [child["id"]]
    assert ids() == all_ids
    assert ids(id=[jobs[2]["id"], jobs[3]["id"]]) == [jobs[2]["id"], jobs[3]["id"]]
    assert ids(parent_id=jobs[0]["id"]) == [child["id"]]
    assert ids(app_id=app2) == [child["id"]]
    assert ids(app_id=0) == []
    assert ids(site_id=site2) == [child["id"]]
    assert ids(site_id=[site_id, site2]) == all_ids
    assert ids(state="AWAITING_PARENTS") == [child["id"]]
    assert ids(state__ne="STAGED_IN") == [jobs[1]["id"], child["id"]]
    assert ids(tags=["g:1", "x:y"]) == [jobs[1]["id"], jobs[3]["id"]]
    assert ids(tags="nocolon") == all_ids
    assert ids(workdir__contains="%") == [child["id"]]
    assert ids(workdir__contains="run_") == [j["id"] for j in jobs]
    assert ids(pending_file_cleanup=False) == [jobs[1]["id"]]
    assert len(ids(pending_file_cleanup="True")) == 5
    assert ids(last_update_after="2999-01-01") == []
    assert ids(last_update_before="2999-01-01 00:00:00") == all_ids
    assert ids(batch_job_id=0) == []
    assert ids(ordering="-id") == list(reversed(all_ids))
    assert ids(ordering="-last_update")[0] == jobs[1]["id"]
    assert ids(ordering="workdir")[-1] == jobs[4]["id"]
    page = alice.get("/jobs/", params={"limit": 2, "offset": 1}).json()
    assert page["count"] == 6 and [j["id"] for j in page["results"]] == all_ids[1:3]
    assert alice.get("/jobs/", params={"limit": 0}).json() == {"count": 6, "results": []}
    # Short pages, exact pages and pages past the end all report the full count.
    for limit, offset, n in [(10, 0, 6), (10, 4, 2), (6, 0, 6), (5, 0, 5), (3, 3, 3), (10, 6, 0), (10, 60, 0)]:
        page = alice.get("/jobs/", params={"limit": limit, "offset": offset}).json()
        assert page["count"] == 6 and [j["id"] for j in page["results"]] == all_ids[offset : offset + n]
    assert alice.get("/jobs/", params={"state": "FAILED", "offset": 3}).json() == {"count": 0, "results": []}
    assert bob.get("/jobs/").json()["count"] == 0
    assert bob.get(f"/jobs/{jobs[0]['id']}").status_code == 404
    assert bob.patch("/jobs/", json=[{"id": jobs[0]["id"], "workdir": "x"}]).status_code == 400


def test_deletes(make_user: Callable[[str], TestClient], engine: Engine) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    _site, app_id = make_site_app(alice)
    jobs = create_jobs(
        alice,
        [
            job_spec(app_id, f"w{i}", tags={"d": "1"}, transfers={"input": {"location_alias": "laptop", "path": "/i"}})
            for i in range(4)
        ],
    )
    held = jobs[0]["id"]
    with engine.begin() as conn:
        sid = conn.execute(
            text("INSERT INTO sessions (site_id) SELECT site_id FROM apps LIMIT 1 RETURNING id")
        ).scalar()
        conn.execute(text("INSERT INTO job_leases (job_id, session_id) VALUES (:j, :s)"), {"s": sid, "j": held})
    # A held job is kept, and the reply is still 204 (spec §14.13); headers say why.
    resp = alice.delete(f"/jobs/{held}")
    assert resp.status_code == 204 and resp.content == b""
    assert resp.headers["X-Balsam-Jobs-Kept"] == "1" and "session" in resp.headers["X-Balsam-Jobs-Kept-Reason"]
    assert get_job(alice, held)["session_id"] == sid
    assert bob.delete(f"/jobs/{jobs[1]['id']}").status_code == 404
    resp = alice.delete(f"/jobs/{jobs[1]['id']}")
    assert resp.status_code == 204 and resp.content == b"" and "X-Balsam-Jobs-Kept" not in resp.headers
    assert alice.get(f"/jobs/{jobs[1]['id']}").status_code == 404
    assert alice.get("/transfers/", params={"job_id": jobs[1]["id"]}).json()["count"] == 0
    assert alice.get("/events/", params={"job_id": jobs[1]["id"]}).json()["count"] == 0
    # Bulk delete skips the held job and answers 204, counting it in the header.
    resp = alice.delete("/jobs/", params={"tags": "d:1"})
    assert resp.status_code == 204 and resp.headers["X-Balsam-Jobs-Kept"] == "1"
    assert [j["id"] for j in alice.get("/jobs/").json()["results"]] == [held]


def test_openapi_documents_the_bulk_bodies(client: TestClient) -> None:
    doc = client.get("/openapi.json")
    assert doc.status_code == 200
    post = doc.json()["paths"]["/jobs/"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert post["type"] == "array" and "workdir" in post["items"]["properties"]
    assert "#/$defs/" not in doc.text  # every reference resolves inside the OpenAPI document


def test_job_last_update_is_aware_utc_and_create_reply_matches_reads(
    make_user: Callable[[str], TestClient], engine: Engine
) -> None:
    """Job `last_update` carries `+00:00` in create, list, detail and acquire replies (spec §14.11), written
    identically by Python (create) and SQL (reads), whatever the microseconds; other timestamps stay naive."""
    from datetime import datetime

    from balsam.server.crud.job_json import last_update_json, last_update_text

    with engine.connect() as conn:
        for micro in (0, 120000, 123400, 123456, 5):
            value = datetime(2024, 1, 2, 3, 4, 5, micro)
            from_sql = conn.execute(select(last_update_json(literal(value)))).scalar_one()
            assert last_update_text(value) == from_sql
            assert datetime.fromisoformat(from_sql) == value.replace(tzinfo=UTC)
    alice = make_user("alice")
    site_id, app_id = make_site_app(alice)
    for i in range(20):
        [created] = alice.post("/jobs/", json=[{"app_id": app_id, "workdir": f"w{i}"}]).json()
        assert created["last_update"].endswith("+00:00")
        assert alice.get(f"/jobs/{created['id']}").json()["last_update"] == created["last_update"]
    listed = alice.get("/jobs/", params={"ordering": "-last_update"}).json()["results"]
    assert all(j["last_update"].endswith("+00:00") for j in listed)
    stamps = [datetime.fromisoformat(j["last_update"]) for j in listed]
    assert stamps == sorted(stamps, reverse=True)
    session = alice.post("/sessions/", json={"site_id": site_id}).json()
    assert "+" not in session["heartbeat"]  # every other timestamp stays naive (spec §0)
    acquired = alice.post(
        f"/sessions/{session['id']}", json={"max_num_jobs": 5, "filter_tags": {}, "states": ["STAGED_IN"]}
    )
    assert acquired.status_code == 200 and len(acquired.json()) == 5
    assert all(j["last_update"].endswith("+00:00") for j in acquired.json())
    (event, *_rest) = alice.get("/events/").json()["results"]
    assert "+" not in event["timestamp"]


def test_sizes_upstream_accepts_are_stored_and_do_not_break_acquire(
    make_user: Callable[[str], TestClient], engine: Engine
) -> None:
    """Upstream stores any integer job size (spec §12.8) and answers 201/200, so this server does too (§14.13);
    the MPI acquire's footprint arithmetic copes with zero and negative values instead."""
    alice = make_user("alice")
    site_id, app_id = make_site_app(alice)
    odd = [
        job_spec(app_id, "zero-nodes", num_nodes=0),
        job_spec(app_id, "zero-packing", node_packing_count=0),
        job_spec(app_id, "negative", num_nodes=-3, wall_time_min=-5, ranks_per_node=0, gpus_per_rank=-1.5),
        job_spec(app_id, "plain"),
    ]
    created = create_jobs(alice, odd)
    assert [(j["num_nodes"], j["node_packing_count"], j["wall_time_min"]) for j in created] == [
        (0, 1, 0),
        (1, 0, 0),
        (-3, 1, -5),
        (1, 1, 0),
    ]
    assert patch(alice, [{"id": created[3]["id"], "node_packing_count": -2, "num_nodes": 0}]) == 1
    assert get_job(alice, created[3]["id"])["node_packing_count"] == -2
    session = alice.post("/sessions/", json={"site_id": site_id}).json()
    acquired = alice.post(
        f"/sessions/{session['id']}",
        json={"max_num_jobs": 10, "filter_tags": {}, "states": ["STAGED_IN"], "max_aggregate_nodes": 1.0},
    )
    assert acquired.status_code == 200, acquired.text
    assert {j["id"] for j in acquired.json()} <= {j["id"] for j in created} and acquired.json()


def test_huge_ids_and_negative_limit_answer_like_upstream(make_user: Callable[[str], TestClient]) -> None:
    """Spec §14.2: ids beyond bigint in paths and filters give 404 or an empty list; a negative limit gives
    the count alone (upstream's answer on most list routes) rather than a 4xx."""
    alice = make_user("alice")
    _site_id, app_id = make_site_app(alice)
    create_jobs(alice, [job_spec(app_id, "w")])
    huge = 99999999999999999999
    assert alice.get("/jobs/", params={"id": huge}).json() == {"count": 0, "results": []}
    assert alice.get("/jobs/", params={"app_id": huge}).json() == {"count": 0, "results": []}
    assert alice.get("/events/", params={"job_id": huge}).json() == {"count": 0, "results": []}
    assert alice.get("/sessions/", params={"id": huge}).json() == {"count": 0, "results": []}
    assert alice.get(f"/jobs/{huge}").status_code == 404
    assert alice.delete(f"/jobs/{huge}").status_code == 404
    assert alice.get("/jobs/", params={"limit": -1}).json() == {"count": 1, "results": []}
    assert alice.get("/events/", params={"limit": -5}).json() == {"count": 1, "results": []}
    assert alice.get("/jobs/", params={"offset": -1}).status_code == 422  # as upstream
