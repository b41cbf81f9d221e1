"""Sites (spec §3) and ownership isolation (spec §2)."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

SITE = {"name": "theta", "path": "/projects/theta/site"}


def test_create_get_list_site(make_user: Callable[[str], TestClient]) -> None:
    alice = make_user("alice")
    resp = alice.post(
        "/sites/",
        json={**SITE, "transfer_locations": {"laptop": "globus://1234"}, "allowed_projects": ["datascience"]},
    )
    assert resp.status_code == 201
    site = resp.json()
    assert site["name"] == "theta" and site["path"] == SITE["path"]
    assert site["transfer_locations"] == {"laptop": "globus://1234"}
    assert site["backfill_windows"] == {} and site["queued_jobs"] == {} and site["optional_batch_job_params"] == {}
    # Naive UTC timestamps: no offset (the published client compares them with utcnow()).
    assert "+" not in site["last_refresh"] and not site["last_refresh"].endswith("Z")
    assert alice.get(f"/sites/{site['id']}").json() == site
    listing = alice.get("/sites/").json()
    assert listing == {"count": 1, "results": [site]}


def test_site_validation_and_duplicates(make_user: Callable[[str], TestClient]) -> None:
    alice = make_user("alice")
    assert alice.post("/sites/", json={"name": "x", "path": "relative/path"}).status_code == 422
    assert alice.post("/sites/", json={"name": "x"}).status_code == 422
    assert alice.post("/sites/", json={"name": "x\u0000", "path": "/a"}).status_code == 422
    assert alice.post("/sites/", json=SITE).status_code == 201
    dup = alice.post("/sites/", json=SITE)
    assert dup.status_code == 400 and dup.json() == {"detail": "A site with this name already exists"}
    # Unknown fields are ignored, not rejected.
    assert alice.post("/sites/", json={"name": "y", "path": "/y", "owner_id": 99, "bogus": 1}).status_code == 201


def test_site_filters(make_user: Callable[[str], TestClient]) -> None:
    alice = make_user("alice")
    ids = [alice.post("/sites/", json={"name": f"s{i}", "path": f"/data/s{i}_x"}).json()["id"] for i in range(3)]
    assert [s["id"] for s in alice.get("/sites/", params={"name": "s1"}).json()["results"]] == [ids[1]]
    assert alice.get("/sites/", params={"path": "s2"}).json()["count"] == 1
    # LIKE metacharacters match literally.
    assert alice.get("/sites/", params={"path": "%"}).json()["count"] == 0
    assert alice.get("/sites/", params={"path": "_x"}).json()["count"] == 3
    assert alice.get("/sites/", params=[("id", ids[0]), ("id", ids[2])]).json()["count"] == 2
    assert alice.get("/sites/", params={"last_refresh_after": "2000-01-01 00:00:00"}).json()["count"] == 3
    assert alice.get("/sites/", params={"last_refresh_after": "2999-01-01T00:00:00+02:00"}).json()["count"] == 0
    page = alice.get("/sites/", params={"limit": 1, "offset": 1}).json()
    assert page["count"] == 3 and [s["id"] for s in page["results"]] == [ids[1]]
    assert alice.get("/sites/", params={"limit": 0}).json() == {"count": 3, "results": []}
    assert alice.get("/sites/", params={"limit": 100001}).status_code == 422
    # A negative limit reads as 0, as upstream answers (spec §14.13); huge ids match nothing (§14.2).
    assert alice.get("/sites/", params={"limit": -1}).json() == {"count": 3, "results": []}
    assert alice.get("/sites/", params={"id": 10**20}).json() == {"count": 0, "results": []}
    assert alice.get(f"/sites/{10**20}").status_code == 404


def test_site_update_is_partial_and_refreshes(make_user: Callable[[str], TestClient]) -> None:
    alice = make_user("alice")
    site = alice.post("/sites/", json={**SITE, "allowed_projects": ["p1"]}).json()
    alice.post("/sites/", json={"name": "other", "path": "/o"})
    resp = alice.put(
        f"/sites/{site['id']}", json={"backfill_windows": {"debug": [{"num_nodes": 2, "wall_time_min": 30}]}}
    )
    assert resp.status_code == 200
    updated = resp.json()
    assert updated["allowed_projects"] == ["p1"]
    assert updated["backfill_windows"] == {"debug": [{"num_nodes": 2, "wall_time_min": 30}]}
    assert updated["last_refresh"] > site["last_refresh"]
    assert updated["creation_date"] == site["creation_date"]
    clash = alice.put(f"/sites/{site['id']}", json={"name": "other"})
    assert clash.status_code == 400 and clash.json()["detail"] == "A site with this name already exists"
    assert alice.put(f"/sites/{site['id']}", json={"path": "nope"}).status_code == 422
    assert alice.put("/sites/999999", json={}).status_code == 404


def test_site_delete(make_user: Callable[[str], TestClient]) -> None:
    alice = make_user("alice")
    site = alice.post("/sites/", json=SITE).json()
    app = alice.post(
        "/apps/", json={"site_id": site["id"], "name": "hello", "serialized_class": "c", "source_code": "s"}
    ).json()
    resp = alice.delete(f"/sites/{site['id']}")
    assert resp.status_code == 204 and resp.content == b""
    assert alice.get(f"/sites/{site['id']}").status_code == 404
    assert alice.get(f"/apps/{app['id']}").status_code == 404
    assert alice.delete(f"/sites/{site['id']}").status_code == 404


def test_sites_are_isolated_between_users(make_user: Callable[[str], TestClient]) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    site = alice.post("/sites/", json=SITE).json()
    # Bob may reuse the name: uniqueness is per owner.
    assert bob.post("/sites/", json=SITE).status_code == 201
    assert bob.get("/sites/").json()["count"] == 1
    assert bob.get("/sites/", params={"id": site["id"]}).json() == {"count": 0, "results": []}
    not_found = bob.get(f"/sites/{site['id']}")
    assert not_found.status_code == 404 and not_found.json()["error"] == "Not found"
    assert bob.put(f"/sites/{site['id']}", json={"name": "stolen"}).status_code == 404
    assert bob.delete(f"/sites/{site['id']}").status_code == 404
    assert alice.get(f"/sites/{site['id']}").json()["name"] == "theta"


def test_auth_required(client: TestClient) -> None:
    resp = client.get("/sites/")
    assert resp.status_code == 401 and resp.json() == {"detail": "Not authenticated"}
    assert resp.headers["www-authenticate"] == "Bearer"
    bad = client.get("/sites/", headers={"Authorization": "Bearer not-a-jwt"})
    assert bad.status_code == 401 and bad.json() == {"detail": "Could not validate credentials"}
    assert client.get("/sites/", headers={"Authorization": "Basic abc"}).status_code == 401


def _app(user: TestClient, site_id: int, name: str) -> int:
    body = {"site_id": site_id, "name": name, "serialized_class": "c", "source_code": "s"}
    return int(user.post("/apps/", json=body).json()["id"])


def test_deleting_a_site_or_app_releases_children_elsewhere(make_user: Callable[[str], TestClient]) -> None:
    """A cascade that deletes parent jobs counts as finishing them (docs/job-states.md), in every site."""
    alice = make_user("alice")
    s1 = alice.post("/sites/", json={"name": "one", "path": "/one"}).json()["id"]
    s2 = alice.post("/sites/", json={"name": "two", "path": "/two"}).json()["id"]
    a1, a2, a3 = _app(alice, s1, "parents"), _app(alice, s2, "children"), _app(alice, s2, "more_parents")
    [p1] = alice.post("/jobs/", json=[{"app_id": a1, "workdir": "p1"}]).json()
    [p2] = alice.post("/jobs/", json=[{"app_id": a3, "workdir": "p2"}]).json()
    c1, c2 = alice.post(
        "/jobs/",
        json=[
            {"app_id": a2, "workdir": "c1", "parent_ids": [p1["id"]]},
            {"app_id": a2, "workdir": "c2", "parent_ids": [p1["id"], p2["id"]]},
        ],
    ).json()
    assert c1["state"] == c2["state"] == "AWAITING_PARENTS"

    assert alice.delete(f"/sites/{s1}").status_code == 204
    assert alice.get(f"/jobs/{c1['id']}").json()["state"] == "STAGED_IN"
    assert alice.get(f"/jobs/{c2['id']}").json()["state"] == "AWAITING_PARENTS"  # p2 still pending

    assert alice.delete(f"/apps/{a3}").status_code == 204
    assert alice.get(f"/jobs/{c2['id']}").json()["state"] == "STAGED_IN"
    events = alice.get("/events/", params={"job_id": c2["id"]}).json()["results"]
    newest = events[0]  # newest first
    assert (newest["from_state"], newest["to_state"]) == ("AWAITING_PARENTS", "STAGED_IN")
