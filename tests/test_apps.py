"""Apps (spec §4, §14.1) and their isolation between users (spec §2)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient


def _site(user: TestClient, name: str = "theta") -> int:
    return int(user.post("/sites/", json={"name": name, "path": f"/sites/{name}"}).json()["id"])


def _app_body(site_id: int, name: str = "hello", **extra: Any) -> dict[str, Any]:
    return {"site_id": site_id, "name": name, "serialized_class": "gASV", "source_code": "class Hello: ...", **extra}


def test_create_get_update_delete_app(make_user: Callable[[str], TestClient]) -> None:
    alice = make_user("alice")
    site_id = _site(alice)
    body = _app_body(
        site_id,
        parameters={"name": {"required": True}, "count": {"required": False, "default": 3, "help": "how many"}},
        transfers={"input_file": {"required": False, "direction": "in", "local_path": "in.dat"}},
    )
    resp = alice.post("/apps/", json=body)
    assert resp.status_code == 201, resp.text
    app = resp.json()
    assert app["parameters"] == {
        "name": {"required": True, "default": None, "help": ""},
        "count": {"required": False, "default": "3", "help": "how many"},
    }
    assert app["transfers"]["input_file"] == {
        "required": False,
        "direction": "in",
        "local_path": "in.dat",
        "description": "",
        "recursive": False,
    }
    assert app["description"] == ""
    assert alice.get(f"/apps/{app['id']}").json() == app

    updated = alice.put(f"/apps/{app['id']}", json={"description": "greets", "id": 999}).json()
    assert updated["description"] == "greets" and updated["id"] == app["id"]
    assert updated["parameters"] == app["parameters"]

    assert alice.delete(f"/apps/{app['id']}").status_code == 204
    assert alice.get(f"/apps/{app['id']}").status_code == 404


def test_app_validation(make_user: Callable[[str], TestClient]) -> None:
    alice = make_user("alice")
    site_id = _site(alice)
    assert alice.post("/apps/", json=_app_body(site_id, name="not-an-identifier")).status_code == 422
    assert alice.post("/apps/", json={"site_id": site_id, "name": "x"}).status_code == 422
    # Parameter rule (spec §14.1), on create and update alike.
    assert alice.post("/apps/", json=_app_body(site_id, parameters={"p": {"required": False}})).status_code == 422
    bad_required = {"p": {"required": True, "default": "x"}}
    assert alice.post("/apps/", json=_app_body(site_id, parameters=bad_required)).status_code == 422
    app = alice.post("/apps/", json=_app_body(site_id)).json()
    assert alice.put(f"/apps/{app['id']}", json={"parameters": {"p": {"required": False}}}).status_code == 422
    assert alice.put(f"/apps/{app['id']}", json={"name": None}).status_code == 422
    slot = {"s": {"required": True, "direction": "sideways", "local_path": "x"}}
    assert alice.post("/apps/", json=_app_body(site_id, name="b", transfers=slot)).status_code == 422
    abs_slot = {"s": {"required": True, "direction": "in", "local_path": "/abs"}}
    assert alice.post("/apps/", json=_app_body(site_id, name="b", transfers=abs_slot)).status_code == 422
    too_big = "x" * (262_144 + 1)
    assert alice.post("/apps/", json=_app_body(site_id, name="c", serialized_class=too_big)).status_code == 422
    assert alice.post("/apps/", json=_app_body(site_id, name="d", source_code="a\u0000b")).status_code == 422
    assert alice.post("/apps/", json=_app_body(2**40)).status_code == 404  # no such site (spec §2)
    assert alice.post("/apps/", json=_app_body(2**70)).status_code == 422  # not even a bigint


def test_app_duplicates_and_moves(make_user: Callable[[str], TestClient]) -> None:
    alice = make_user("alice")
    s1, s2 = _site(alice, "s1"), _site(alice, "s2")
    a1 = alice.post("/apps/", json=_app_body(s1, "one")).json()
    dup = alice.post("/apps/", json=_app_body(s1, "one"))
    assert dup.status_code == 400 and dup.json() == {"detail": "An app with this site_id and name already exists"}
    alice.post("/apps/", json=_app_body(s2, "one"))
    clash = alice.put(f"/apps/{a1['id']}", json={"site_id": s2})
    assert clash.status_code == 400
    moved = alice.put(f"/apps/{a1['id']}", json={"site_id": s2, "name": "two"})
    assert moved.status_code == 200 and moved.json()["site_id"] == s2


def test_app_filters(make_user: Callable[[str], TestClient]) -> None:
    alice = make_user("alice")
    s1, s2 = _site(alice, "alpha"), _site(alice, "beta")
    ids = [alice.post("/apps/", json=_app_body(s, n)).json()["id"] for s, n in ((s1, "a"), (s1, "b"), (s2, "a"))]
    assert alice.get("/apps/", params={"site_id": s1}).json()["count"] == 2
    assert alice.get("/apps/", params=[("site_id", s1), ("site_id", s2)]).json()["count"] == 3
    assert [a["id"] for a in alice.get("/apps/", params={"name": "a"}).json()["results"]] == [ids[0], ids[2]]
    assert alice.get("/apps/", params={"site_name": "beta"}).json()["count"] == 1
    assert alice.get("/apps/", params={"site_path": "/sites/al"}).json()["count"] == 2
    assert alice.get("/apps/", params=[("id", ids[1])]).json()["results"][0]["name"] == "b"
    assert alice.get("/apps/", params={"limit": 0}).json() == {"count": 3, "results": []}


def test_apps_are_isolated_between_users(make_user: Callable[[str], TestClient]) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    site_id = _site(alice)
    bob_site = _site(bob)
    app = alice.post("/apps/", json=_app_body(site_id)).json()
    # Bob cannot see, change, delete or create apps on Alice's site.
    assert bob.get("/apps/").json() == {"count": 0, "results": []}
    assert bob.get(f"/apps/{app['id']}").status_code == 404
    assert bob.put(f"/apps/{app['id']}", json={"description": "x"}).status_code == 404
    assert bob.delete(f"/apps/{app['id']}").status_code == 404
    assert bob.post("/apps/", json=_app_body(site_id, "intruder")).status_code == 404
    # Nor move his own app onto Alice's site.
    own = bob.post("/apps/", json=_app_body(bob_site)).json()
    assert bob.put(f"/apps/{own['id']}", json={"site_id": site_id}).status_code == 404
    assert alice.get("/apps/").json()["count"] == 1
