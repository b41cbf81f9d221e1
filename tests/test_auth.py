"""Authentication (spec §1): discovery, password flows, tokens, OAuth device and authorization-code flows."""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlparse

import jwt
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.conftest import TEST_SECRET
from tests.oauth_provider import Provider, oauth_provider
from tests.ops_helpers import run_cli


def test_auth_how_lists_enabled_methods(app_factory: Callable[..., TestClient]) -> None:
    assert app_factory().get("/auth/how").json() == ["LoginMethod.password"]
    both = app_factory(BALSAM_AUTH_LOGIN_METHODS='["password", "oauth_device"]')
    assert both.get("/auth/how").json() == ["LoginMethod.password", "LoginMethod.oauth_device"]


def test_disabled_method_routes_do_not_exist(app_factory: Callable[..., TestClient]) -> None:
    oauth_only = app_factory(BALSAM_AUTH_LOGIN_METHODS='["oauth_device"]')
    assert oauth_only.post("/auth/password/register", json={"username": "a", "password": "b"}).status_code == 404
    assert oauth_only.post("/auth/password/login", data={"username": "a", "password": "b"}).status_code == 404
    password_only = app_factory(BALSAM_AUTH_LOGIN_METHODS='["password"]')
    assert password_only.post("/auth/device/login", data={"client_id": str(uuid.uuid4())}).status_code == 404


def test_registration_off_is_403_and_accounts_come_from_the_cli(
    app_factory: Callable[..., TestClient], database_url: str
) -> None:
    closed = app_factory(BALSAM_AUTH_ALLOW_REGISTRATION="false")
    resp = closed.post("/auth/password/register", json={"username": "mallory", "password": "pw"})
    assert resp.status_code == 403
    assert "closed" in resp.json()["detail"] and "balsam server user add" in resp.json()["detail"]
    assert closed.post("/auth/password/login", data={"username": "mallory", "password": "pw"}).status_code == 401

    added = run_cli("user", "add", "carol", env={"BALSAM_DATABASE_URL": database_url, "BALSAM_NEW_PASSWORD": "pw-c"})
    assert added.returncode == 0, added.stderr
    assert closed.post("/auth/password/login", data={"username": "carol", "password": "pw-c"}).status_code == 200


def test_registration_is_off_by_default(app_factory: Callable[..., TestClient]) -> None:
    os.environ.pop("BALSAM_AUTH_ALLOW_REGISTRATION", None)
    default = app_factory()
    assert default.post("/auth/password/register", json={"username": "x", "password": "y"}).status_code == 403
    opened = app_factory(BALSAM_AUTH_ALLOW_REGISTRATION="true")
    assert opened.post("/auth/password/register", json={"username": "x", "password": "y"}).status_code == 201


def test_register_login_me(client: TestClient) -> None:
    resp = client.post("/auth/password/register", json={"username": "alice", "password": "s3cret"})
    assert resp.status_code == 201
    user = resp.json()
    assert set(user) == {"id", "username"} and user["username"] == "alice"
    dup = client.post("/auth/password/register", json={"username": "alice", "password": "x"})
    assert dup.status_code == 400 and dup.json() == {"detail": "Username already taken"}

    login = client.post(
        "/auth/password/login", data={"username": "alice", "password": "s3cret", "grant_type": "password"}
    )
    assert login.status_code == 200
    body = login.json()
    assert set(body) == {"access_token", "token_type", "expiration"} and body["token_type"] == "bearer"
    expiration = datetime.fromisoformat(body["expiration"])
    assert expiration.tzinfo is None  # naive UTC, as the client needs (spec §11)
    assert timedelta(hours=47) < expiration - datetime.utcnow() <= timedelta(hours=48)

    claims = jwt.decode(body["access_token"], TEST_SECRET, algorithms=["HS256"])
    assert claims["sub"] == str(user["id"]) and claims["username"] == "alice"
    me = client.get("/auth/password/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.json() == user


@pytest.mark.parametrize(
    "form",
    [
        {"username": "alice", "password": "wrong"},
        {"username": "nobody", "password": "s3cret"},
        {"username": "alice", "password": ""},
    ],
)
def test_login_failures_are_401(client: TestClient, form: dict[str, str]) -> None:
    client.post("/auth/password/register", json={"username": "alice", "password": "s3cret"})
    resp = client.post("/auth/password/login", data=form)
    if form["password"] == "":
        assert resp.status_code == 422  # a missing (empty) form field
    else:
        assert resp.status_code == 401 and resp.json() == {"detail": "Unauthorized"}


def test_login_validation(client: TestClient) -> None:
    assert client.post("/auth/password/login", data={"username": "alice"}).status_code == 422
    bad_grant = {"username": "a", "password": "b", "grant_type": "client_credentials"}
    assert client.post("/auth/password/login", data=bad_grant).status_code == 422
    assert client.post("/auth/password/register", json={"username": "", "password": "x"}).status_code == 422
    assert client.post("/auth/password/register", json={"username": "a\u0000", "password": "x"}).status_code == 422
    assert (
        client.post(
            "/auth/password/register", content=b"{not json", headers={"content-type": "application/json"}
        ).status_code
        == 422
    )


def test_repeated_wrong_password_stays_401(client: TestClient) -> None:
    """The published client retries a failed login in a loop; every retry must be answered the same way."""
    client.post("/auth/password/register", json={"username": "alice", "password": "s3cret"})
    for _ in range(20):
        assert client.post("/auth/password/login", data={"username": "alice", "password": "nope"}).status_code == 401
    assert client.post("/auth/password/login", data={"username": "alice", "password": "s3cret"}).status_code == 200


def test_expired_tampered_and_foreign_tokens(make_user: Callable[[str], TestClient], client: TestClient) -> None:
    alice = make_user("alice")
    token = alice.headers["Authorization"].removeprefix("Bearer ")
    claims = jwt.decode(token, TEST_SECRET, algorithms=["HS256"])
    expired = jwt.encode({**claims, "exp": 1000}, TEST_SECRET, algorithm="HS256")
    forged = jwt.encode(claims, "another-secret-key-0123456789", algorithm="HS256")
    for bad in (expired, forged, token[:-3] + "abc"):
        resp = client.get("/sites/", headers={"Authorization": f"Bearer {bad}"})
        assert resp.status_code == 401 and resp.json() == {"detail": "Could not validate credentials"}


def test_remembered_token_still_expires(make_user: Callable[[str], TestClient]) -> None:
    """Verified tokens are remembered (tokens.VerifiedTokens), but never past their `exp`."""
    alice = make_user("alice")
    claims = jwt.decode(alice.headers["Authorization"].removeprefix("Bearer "), TEST_SECRET, algorithms=["HS256"])
    expires = int(time.time()) + 3
    short = jwt.encode({**claims, "exp": expires}, TEST_SECRET, algorithm="HS256")
    headers = {"Authorization": f"Bearer {short}"}
    assert alice.get("/sites/", headers=headers).status_code == 200
    assert alice.get("/sites/", headers=headers).status_code == 200  # served from the cache
    time.sleep(max(0.0, expires - time.time()) + 0.2)
    assert alice.get("/sites/", headers=headers).status_code == 401


def test_token_of_deleted_user_stops_working(make_user: Callable[[str], TestClient], engine: Engine) -> None:
    """Each worker remembers for BALSAM_AUTH_USER_CHECK_SECONDS (default 2, at most 5) that an account exists;
    after that its token is refused. Real clock, real database (tests/test_user_check_serving.py: gunicorn)."""
    from sqlalchemy import text

    alice = make_user("alice")
    assert alice.get("/sites/").status_code == 200
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM users WHERE username = 'alice'"))
    deleted = time.monotonic()
    while (resp := alice.get("/sites/")).status_code == 200:
        assert time.monotonic() - deleted < 5, "a deleted account's token still works after 5 s"
        time.sleep(0.05)
    assert resp.status_code == 401 and resp.json() == {"detail": "Could not validate credentials"}
    assert alice.get("/sites/").status_code == 401


def test_user_check_every_request_when_cache_off(
    app_factory: Callable[..., TestClient], make_user: Callable[[str], TestClient], engine: Engine
) -> None:
    from sqlalchemy import text

    alice = make_user("alice")
    token = alice.headers["Authorization"]
    uncached = app_factory(BALSAM_AUTH_USER_CHECK_SECONDS="0")
    uncached.headers["Authorization"] = token
    assert uncached.get("/sites/").status_code == 200
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM users WHERE username = 'alice'"))
    assert uncached.get("/sites/").status_code == 401


def _race(n: int, request: Callable[[], int]) -> list[int]:
    """Fire `request` from n threads released at the same instant; return the sorted status codes."""
    statuses: list[int] = []
    barrier = threading.Barrier(n)

    def run() -> None:
        barrier.wait()
        statuses.append(request())

    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sorted(statuses)


def test_concurrent_registrations_give_one_201(client: TestClient) -> None:
    def register() -> int:
        return client.post("/auth/password/register", json={"username": "race", "password": "x"}).status_code

    assert _race(6, register) == [201, 400, 400, 400, 400, 400]


def test_concurrent_site_creation_gives_one_201(make_user: Callable[[str], TestClient]) -> None:
    alice = make_user("alice")

    def create() -> int:
        return alice.post("/sites/", json={"name": "same", "path": "/p"}).status_code

    assert _race(6, create) == [201, 400, 400, 400, 400, 400]


# --- OAuth -------------------------------------------------------------------------------------------


@pytest.fixture
def provider() -> Iterator[Provider]:
    with oauth_provider() as p:
        yield p


@pytest.fixture
def oauth_client(app_factory: Callable[..., TestClient], provider: Provider) -> TestClient:
    return app_factory(
        BALSAM_AUTH_LOGIN_METHODS=json.dumps(["password", "oauth_device", "oauth_authcode"]),
        BALSAM_OAUTH_CLIENT_ID="balsam-test",
        BALSAM_OAUTH_CLIENT_SECRET="provider-secret",
        BALSAM_OAUTH_REQUEST_URI=f"{provider.base_url}/authorize",
        BALSAM_OAUTH_TOKEN_URI=f"{provider.base_url}/token",
        BALSAM_OAUTH_USER_INFO_URI=f"{provider.base_url}/userinfo",
    )


def _redirect_state(resp: Any, provider: Provider) -> str:
    location = resp.headers["location"]
    assert location.startswith(f"{provider.base_url}/authorize?")
    query = parse_qs(urlparse(location).query)
    assert query["client_id"] == ["balsam-test"] and query["response_type"] == ["code"]
    assert query["redirect_uri"][0].endswith("/auth/oauth/ALCF/callback")
    return query["state"][0]


def _device_login(client: TestClient) -> tuple[str, dict[str, Any]]:
    client_id = str(uuid.uuid4())
    resp = client.post("/auth/device/login", data={"client_id": client_id, "scope": ""})
    assert resp.status_code == 200
    return client_id, resp.json()


def _poll(client: TestClient, client_id: str, device_code: Any) -> Any:
    return client.post(
        "/auth/device/token",
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
            "device_code": device_code,
            "client_id": client_id,
        },
    )


def test_device_flow_end_to_end(oauth_client: TestClient, provider: Provider) -> None:
    client_id, device = _device_login(oauth_client)
    assert set(device) == {
        "device_code",
        "user_code",
        "verification_uri",
        "verification_uri_complete",
        "expires_in",
        "interval",
    }
    user_code = str(device["user_code"])
    assert len(user_code) == 9 and user_code[4] == "-"
    assert not set(user_code.replace("-", "")) & set("AEIOUY")
    assert device["verification_uri_complete"] == f"{device['verification_uri']}?user_code={user_code}"
    assert (device["expires_in"], device["interval"]) == (300.0, 3.0)

    pending = _poll(oauth_client, client_id, device["device_code"])
    assert pending.status_code == 400 and "authorization_pending" in pending.text

    verify = oauth_client.get("/auth/oauth/ALCF/login/device", params={"user_code": user_code}, follow_redirects=False)
    assert verify.status_code == 307
    state = _redirect_state(verify, provider)
    provider.codes["code-1"] = "carol"
    cb = oauth_client.get("/auth/oauth/ALCF/callback", params={"code": "code-1", "state": state})
    assert cb.status_code == 200 and cb.json()["username"] == "carol"
    assert provider.token_requests[-1]["client_secret"] == "provider-secret"
    # A state is single use.
    replay = oauth_client.get("/auth/oauth/ALCF/callback", params={"code": "code-1", "state": state})
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_state"

    token = _poll(oauth_client, client_id, device["device_code"])
    assert token.status_code == 200
    access = token.json()["access_token"]
    me = oauth_client.get("/auth/password/me", headers={"Authorization": f"Bearer {access}"})
    assert me.json()["username"] == "carol"
    # The attempt is consumed; an OAuth-created user has no password.
    assert _poll(oauth_client, client_id, device["device_code"]).status_code == 400
    assert oauth_client.post("/auth/password/login", data={"username": "carol", "password": "x"}).status_code == 401


def test_device_token_error_order(oauth_client: TestClient, provider: Provider) -> None:
    client_id, device = _device_login(oauth_client)
    wrong_grant = oauth_client.post(
        "/auth/device/token",
        data={"grant_type": "password", "device_code": device["device_code"], "client_id": client_id},
    )
    assert wrong_grant.status_code == 400 and wrong_grant.json()["detail"] == "unsupported_grant_type"
    unknown = _poll(oauth_client, str(uuid.uuid4()), device["device_code"])
    assert unknown.status_code == 400 and unknown.json()["error"] == "invalid_client"
    unknown_code = oauth_client.get(
        "/auth/oauth/ALCF/login/device", params={"user_code": "BBBB-CCCC"}, follow_redirects=False
    )
    assert unknown_code.status_code == 400 and unknown_code.json()["detail"] == "invalid_client"


def test_device_flow_denied_only_with_valid_state(oauth_client: TestClient, provider: Provider) -> None:
    client_id, device = _device_login(oauth_client)
    user_code = device["user_code"]
    # A forged denial (a state the server never issued) changes nothing (spec §12.11).
    forged = oauth_client.get(
        "/auth/oauth/ALCF/callback", params={"state": f"DEVICE-FLOW {user_code} forged", "error": "access_denied"}
    )
    assert forged.status_code == 400
    assert _poll(oauth_client, client_id, device["device_code"]).status_code == 400
    verify = oauth_client.get("/auth/oauth/ALCF/login/device", params={"user_code": user_code}, follow_redirects=False)
    state = _redirect_state(verify, provider)
    # A provider error needs no `code` (upstream answered 422).
    denied = oauth_client.get(
        "/auth/oauth/ALCF/callback", params={"state": state, "error": "access_denied", "error_description": "no"}
    )
    assert denied.status_code == 200 and denied.json() == {"error": "access_denied", "error_description": "no"}
    resp = _poll(oauth_client, client_id, device["device_code"])
    assert resp.status_code == 403 and resp.json()["detail"] == "access_denied"


def test_device_flow_expired_code(oauth_client: TestClient, provider: Provider, engine: Engine) -> None:
    from sqlalchemy import text

    client_id, device = _device_login(oauth_client)
    with engine.begin() as conn:
        conn.execute(text("UPDATE device_code_attempts SET expiration = expiration - interval '10 minutes'"))
    assert _poll(oauth_client, client_id, device["device_code"]).json()["detail"] == "expired_token"
    verify = oauth_client.get(
        "/auth/oauth/ALCF/login/device", params={"user_code": device["user_code"]}, follow_redirects=False
    )
    assert verify.status_code == 400


def test_reused_client_id_is_fine(oauth_client: TestClient) -> None:
    client_id = str(uuid.uuid4())
    first = oauth_client.post("/auth/device/login", data={"client_id": client_id})
    second = oauth_client.post("/auth/device/login", data={"client_id": client_id})
    assert first.status_code == second.status_code == 200
    assert first.json()["device_code"] != second.json()["device_code"]
    assert oauth_client.post("/auth/device/login", data={"client_id": "not-a-uuid"}).status_code == 422


def test_browser_flow_issues_token(oauth_client: TestClient, provider: Provider) -> None:
    start = oauth_client.get("/auth/oauth/ALCF/login", follow_redirects=False)
    assert start.status_code == 307
    state = _redirect_state(start, provider)
    provider.codes["code-2"] = "dave"
    resp = oauth_client.get("/auth/oauth/ALCF/callback", params={"code": "code-2", "state": state})
    assert resp.status_code == 200
    body = resp.json()
    assert body["username"] == "dave" and body["token_type"] == "bearer"
    me = oauth_client.get("/auth/password/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.json()["username"] == "dave"
    assert oauth_client.get("/auth/oauth/OTHER/login", follow_redirects=False).status_code == 404


def test_provider_failure_is_502(oauth_client: TestClient, provider: Provider) -> None:
    state = _redirect_state(oauth_client.get("/auth/oauth/ALCF/login", follow_redirects=False), provider)
    resp = oauth_client.get("/auth/oauth/ALCF/callback", params={"code": "unknown-code", "state": state})
    assert resp.status_code == 502 and resp.json()["error"] == "provider_error"
