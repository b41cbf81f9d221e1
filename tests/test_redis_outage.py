"""Redis is optional (spec §10): with our own Redis stopped mid-run the API keeps serving every request,
logs one warning, and the websocket closes with 1013 until Redis is back."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from balsam.server.embedded.redis import RedisServer
from balsam.server.pubsub import user_channel


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis-outage")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pubsub_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    # The "balsam" logger does not propagate to the root logger, so attach the capture handler directly.
    loggers = [logging.getLogger("balsam.server.pubsub"), logging.getLogger("balsam.server.api.routes.subscribe")]
    for logger in loggers:
        logger.addHandler(caplog.handler)
    caplog.set_level(logging.INFO, logger="balsam")
    yield caplog
    for logger in loggers:
        logger.removeHandler(caplog.handler)


def _user(app: TestClient, name: str) -> tuple[TestClient, str]:
    assert app.post("/auth/password/register", json={"username": name, "password": "pw"}).status_code == 201
    token = str(app.post("/auth/password/login", data={"username": name, "password": "pw"}).json()["access_token"])
    app.headers["Authorization"] = f"Bearer {token}"
    return app, token


def _wait_subscribed(redis_server: RedisServer, user: TestClient) -> None:
    """The websocket subscribes after it reads the token, asynchronously: a message published before that
    is not delivered, so wait until Redis counts the subscriber."""
    channel = user_channel(int(user.get("/auth/password/me").json()["id"]))
    client = redis.Redis(unix_socket_path=redis_server.params["unix_socket_path"])
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            counts: list[tuple[bytes, int]] = client.pubsub_numsub(channel)  # type: ignore[assignment]
            if counts[0][1] >= 1:
                return
            time.sleep(0.02)
    finally:
        client.close()
    raise AssertionError(f"no subscriber of {channel} within 10 s")


def _workload(user: TestClient, n: int) -> None:
    """One round of ordinary traffic, including every kind of request that publishes."""
    site = user.post("/sites/", json={"name": f"s{n}", "path": f"/s{n}"})
    assert site.status_code == 201
    site_id = site.json()["id"]
    assert user.put(f"/sites/{site_id}", json={"path": f"/t{n}"}).status_code == 200
    app = user.post("/apps/", json={"site_id": site_id, "name": "A", "serialized_class": "x", "source_code": "y"})
    assert app.status_code == 201
    jobs = user.post("/jobs/", json=[{"app_id": app.json()["id"], "workdir": f"w/{i}"} for i in range(3)])
    assert jobs.status_code == 201
    ids = [j["id"] for j in jobs.json()]
    assert user.put(f"/jobs/{ids[0]}", json={"state": "PREPROCESSED"}).status_code == 200
    sid = user.post("/sessions/", json={"site_id": site_id}).json()["id"]
    acquired = user.post(f"/sessions/{sid}", json={"max_num_jobs": 5, "filter_tags": {}})
    assert acquired.status_code == 200 and [j["id"] for j in acquired.json()] == ids[:1]
    assert user.put(f"/jobs/{ids[0]}", json={"state": "RUNNING"}).status_code == 200
    assert user.put(f"/sessions/{sid}").status_code == 200
    assert user.delete(f"/sessions/{sid}").status_code == 204
    assert user.get(f"/jobs/{ids[0]}").json()["state"] == "RUN_TIMEOUT"
    assert user.delete(f"/jobs/{ids[1]}").status_code == 204
    assert user.delete(f"/sites/{site_id}").status_code == 204


def test_api_keeps_serving_with_redis_stopped_mid_run(
    own_redis: RedisServer,
    app_factory: Callable[..., TestClient],
    pubsub_log: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from balsam.server import pubsub

    monkeypatch.setattr(pubsub, "SUSPEND_SECONDS", 0.5)  # shorten the post-failure pause for this test
    user, token = _user(app_factory(BALSAM_REDIS_PARAMS=json.dumps(own_redis.params)), "alice")
    pubsub_log.set_level(logging.INFO, logger="balsam")  # after the app configured logging
    with user.websocket_connect("/subscribe-user") as ws:
        ws.send_text(token)
        _wait_subscribed(own_redis, user)
        _workload(user, 0)
        frame = json.loads(ws.receive_bytes())  # Redis up: the first published message arrives
        assert frame["action"] == "create" and frame["type"] == "site"
        assert user.get("/healthz").json()["redis"] == "ok"

        own_redis.stop()  # mid-run
        # The open websocket notices and closes with "try again later".
        with pytest.raises(WebSocketDisconnect) as closed:
            while True:
                ws.receive_bytes()
        assert closed.value.code == 1013

    # Every kind of request still succeeds.
    site_id = user.post("/sites/", json={"name": "after", "path": "/after"}).json()["id"]
    assert user.get("/sites/").json()["count"] == 1
    app_id = user.post(
        "/apps/", json={"site_id": site_id, "name": "A", "serialized_class": "x", "source_code": "y"}
    ).json()["id"]
    [job] = user.post("/jobs/", json=[{"app_id": app_id, "workdir": "w"}]).json()
    assert user.put(f"/jobs/{job['id']}", json={"state": "PREPROCESSED"}).status_code == 200
    sid = user.post("/sessions/", json={"site_id": site_id}).json()["id"]
    assert user.put(f"/sessions/{sid}").status_code == 200
    acquired = user.post(f"/sessions/{sid}", json={"max_num_jobs": 5, "filter_tags": {}})
    assert acquired.status_code == 200 and [j["id"] for j in acquired.json()] == [job["id"]]
    assert user.put(f"/jobs/{job['id']}", json={"state": "RUNNING"}).status_code == 200
    assert user.delete(f"/sessions/{sid}").status_code == 204
    assert user.get(f"/jobs/{job['id']}").json()["state"] == "RUN_TIMEOUT"
    health = user.get("/healthz")
    assert health.status_code == 200 and health.json() == {"status": "ok", "database": "ok", "redis": "unavailable"}
    # A new websocket gets a clear close code instead of hanging.
    with user.websocket_connect("/subscribe-user") as ws:
        ws.send_text(token)
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_bytes()
    assert closed.value.code == 1013

    warnings = [r for r in pubsub_log.records if r.name == "balsam.server.pubsub" and r.levelno == logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]

    # Redis comes back: publishing resumes on its own.
    own_redis.start()
    time.sleep(0.6)  # let the (shortened) suspension after the last failure run out
    _workload(user, 9)
    assert any("works again" in r.getMessage() for r in pubsub_log.records)


def test_publishing_with_redis_down_is_not_retried_and_then_suspended(
    own_redis: RedisServer, app_factory: Callable[..., TestClient]
) -> None:
    """With Redis down, one failed attempt (no retry loop inside the request), then publishes are skipped
    without touching the network until the suspension ends, and publishing resumes once Redis is back."""
    from balsam.server import pubsub

    user, _ = _user(app_factory(BALSAM_REDIS_PARAMS=json.dumps(own_redis.params)), "bob")
    publisher = pubsub.get_publisher()
    retry = publisher._client.get_retry() if publisher._client is not None else None
    assert retry is not None and retry._retries == 0
    own_redis.stop()
    assert user.post("/sites/", json={"name": "s", "path": "/s"}).status_code == 201  # the failed attempt
    assert publisher.skipped == 0
    assert user.post("/sites/", json={"name": "t", "path": "/t"}).status_code == 201
    assert publisher.skipped == 1  # dropped without a connection attempt
    own_redis.start()
    publisher._suspended_until = 0.0  # end the suspension instead of sleeping through it
    listener = redis.Redis(unix_socket_path=str(own_redis.socket_path))
    channel = listener.pubsub()
    channel.subscribe(pubsub.user_channel(user.get("/auth/password/me").json()["id"]))
    channel.get_message(timeout=1.0)  # the subscribe confirmation
    assert user.post("/sites/", json={"name": "u", "path": "/u"}).status_code == 201
    message = channel.get_message(timeout=5.0)
    assert message is not None and json.loads(message["data"])["data"]["name"] == "u"
    channel.close()
    listener.close()
