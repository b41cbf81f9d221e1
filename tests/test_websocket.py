"""`/subscribe-user` (spec §10, §12.26): token handshake, live events from a real gunicorn + Redis,
isolation between users, and cleanup of the Redis subscription on disconnect."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import redis
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect
from websockets.sync.client import ClientConnection, connect

from balsam.server.api.routes import subscribe
from balsam.server.pubsub import user_channel
from tests.conftest import TEST_SECRET
from tests.serving import Gunicorn, gunicorn


def _subscribers(redis_params: dict[str, str], user_id: int) -> int:
    client = redis.Redis(unix_socket_path=redis_params["unix_socket_path"])
    try:
        counts: list[tuple[bytes, int]] = client.pubsub_numsub(user_channel(user_id))  # type: ignore[assignment]
        return int(counts[0][1])
    finally:
        client.close()


def _wait_subscribers(redis_params: dict[str, str], user_id: int, expected: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _subscribers(redis_params, user_id) == expected:
            return
        time.sleep(0.02)
    raise AssertionError(f"expected {expected} subscriber(s) of {user_channel(user_id)}")


@pytest.fixture
def server(database_url: str, redis_params: dict[str, str], tmp_path: Path) -> Iterator[Gunicorn]:
    env = {
        "BALSAM_DATABASE_URL": database_url,
        "BALSAM_AUTH_SECRET_KEY": TEST_SECRET,
        "BALSAM_REDIS_PARAMS": json.dumps(redis_params),
    }
    with gunicorn(env, tmp_path, workers=2) as srv:
        yield srv


def _login(http: httpx.Client, name: str) -> tuple[str, int]:
    assert http.post("/auth/password/register", json={"username": name, "password": "pw"}).status_code == 201
    token = http.post("/auth/password/login", data={"username": name, "password": "pw"}).json()["access_token"]
    me = http.get("/auth/password/me", headers={"Authorization": f"Bearer {token}"}).json()
    return token, int(me["id"])


def _make_job(http: httpx.Client, auth: dict[str, str], name: str) -> tuple[int, int]:
    site_id = http.post("/sites/", json={"name": name, "path": f"/{name}"}, headers=auth).json()["id"]
    app = {"site_id": site_id, "name": "A", "serialized_class": "x", "source_code": "y"}
    app_id = http.post("/apps/", json=app, headers=auth).json()["id"]
    created = http.post("/jobs/", json=[{"app_id": app_id, "workdir": "w/1"}], headers=auth)
    assert created.status_code == 201, created.text
    return site_id, int(created.json()[0]["id"])


def _subscribe(server: Gunicorn, token: str) -> ClientConnection:
    ws = connect(server.base_url.replace("http://", "ws://") + "/subscribe-user", open_timeout=10)
    ws.send(token)
    return ws


def test_state_change_reaches_the_websocket_within_one_second(server: Gunicorn, redis_params: dict[str, str]) -> None:
    with httpx.Client(base_url=server.base_url, timeout=10) as http:
        alice_token, alice_id = _login(http, "alice")
        bob_token, _ = _login(http, "bob")
        alice = {"Authorization": f"Bearer {alice_token}"}
        bob = {"Authorization": f"Bearer {bob_token}"}
        site_id, job_id = _make_job(http, alice, "a")
        _, bob_job = _make_job(http, bob, "b")

        with _subscribe(server, alice_token) as ws:
            _wait_subscribers(redis_params, alice_id, 1)
            # Bob's change first: it must not reach Alice (her next message is her own).
            assert http.put(f"/jobs/{bob_job}", json={"state": "PREPROCESSED"}, headers=bob).status_code == 200
            started = time.monotonic()
            assert http.put(f"/jobs/{job_id}", json={"state": "PREPROCESSED"}, headers=alice).status_code == 200
            frame = ws.recv(timeout=1.0)  # the functional deadline: raises TimeoutError after 1 s
            elapsed = time.monotonic() - started
            assert isinstance(frame, bytes)  # forwarded unchanged as a binary frame
            message = json.loads(frame)
            assert message["action"] == "bulk-create" and message["type"] == "event"
            [event] = message["data"]
            assert event["job_id"] == job_id
            assert (event["from_state"], event["to_state"]) == ("STAGED_IN", "PREPROCESSED")
            assert elapsed < 1.0

            # Session lifecycle: acquire, run, delete -> the RUN_TIMEOUT event and the session delete.
            sid = http.post("/sessions/", json={"site_id": site_id}, headers=alice).json()["id"]
            acquired = http.post(f"/sessions/{sid}", json={"max_num_jobs": 5, "filter_tags": {}}, headers=alice)
            assert [j["id"] for j in acquired.json()] == [job_id]
            assert http.put(f"/jobs/{job_id}", json={"state": "RUNNING"}, headers=alice).status_code == 200
            running = json.loads(ws.recv(timeout=1.0))
            assert running["data"][0]["to_state"] == "RUNNING"
            assert http.delete(f"/sessions/{sid}", headers=alice).status_code == 204
            timed_out = json.loads(ws.recv(timeout=1.0))
            assert timed_out["type"] == "event"
            assert [(e["job_id"], e["to_state"]) for e in timed_out["data"]] == [(job_id, "RUN_TIMEOUT")]
            assert json.loads(ws.recv(timeout=1.0)) == {"action": "delete", "type": "session", "data": {"id": sid}}

        # Closing the socket tears the Redis subscription down.
        _wait_subscribers(redis_params, alice_id, 0)


def test_silent_disconnect_releases_the_subscription(server: Gunicorn, redis_params: dict[str, str]) -> None:
    with httpx.Client(base_url=server.base_url, timeout=10) as http:
        token, user_id = _login(http, "carol")
    ws = _subscribe(server, token)
    _wait_subscribers(redis_params, user_id, 1)
    # Drop the TCP connection without a websocket close handshake. (A peer that vanishes without even a FIN
    # is caught by uvicorn's ping/pong keepalive, 20 s + 20 s by default, which ends in the same disconnect.)
    ws.socket.shutdown(socket.SHUT_RDWR)
    ws.socket.close()
    _wait_subscribers(redis_params, user_id, 0)


@pytest.fixture
def alice_token(client: TestClient) -> str:
    assert client.post("/auth/password/register", json={"username": "al", "password": "pw"}).status_code == 201
    return str(client.post("/auth/password/login", data={"username": "al", "password": "pw"}).json()["access_token"])


def test_invalid_token_closes_with_1008(client: TestClient) -> None:
    with client.websocket_connect("/subscribe-user") as ws:
        ws.send_text("not-a-jwt")
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_bytes()
    assert closed.value.code == 1008
    with client.websocket_connect("/subscribe-user") as ws:
        ws.send_bytes(b"\x00binary")
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_bytes()
    assert closed.value.code == 1008


def test_missing_token_times_out_with_1008(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(subscribe, "AUTH_TIMEOUT", 0.3)
    with client.websocket_connect("/subscribe-user") as ws, pytest.raises(WebSocketDisconnect) as closed:
        ws.receive_bytes()
    assert closed.value.code == 1008


def test_no_redis_configured_closes_with_1011(
    alice_token: str, app_factory: Callable[..., TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BALSAM_REDIS_PARAMS")
    no_redis = app_factory()
    with no_redis.websocket_connect("/subscribe-user") as ws:
        ws.send_text(alice_token)
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_bytes()
    assert closed.value.code == 1011


def test_token_of_deleted_user_is_refused(client: TestClient, alice_token: str, engine: object) -> None:
    from sqlalchemy import Engine, text

    assert isinstance(engine, Engine)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM users WHERE username = 'al'"))
    with client.websocket_connect("/subscribe-user") as ws:
        ws.send_text(alice_token)
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_bytes()
    assert closed.value.code == 1008
