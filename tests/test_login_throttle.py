"""Login throttling (balsam.server.auth.throttle): per username and per client address, shared through
PostgreSQL, cheap refusals with Retry-After, and no lockout from the published client's retry loop."""

from __future__ import annotations

import http.client
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from balsam.server.auth import password_login
from balsam.server.auth.throttle import address_key, user_key
from balsam.server.main import create_app
from tests.ops_helpers import run_cli
from tests.serving import gunicorn, one_connection_per_worker

LIMITS = {
    "BALSAM_AUTH_LOGIN_FAILURES_PER_USER": "3",
    "BALSAM_AUTH_LOGIN_FAILURES_PER_ADDRESS": "6",
    "BALSAM_AUTH_LOGIN_FAILURE_WINDOW": "60",
}
SHORT_WINDOW = 8  # seconds; long enough for a few Argon2 runs on a loaded machine


@pytest.fixture
def throttle_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    # The "balsam" logger does not propagate to the root logger, so attach the capture handler directly.
    logger = logging.getLogger("balsam.server.auth.throttle")
    logger.addHandler(caplog.handler)
    caplog.set_level(logging.WARNING, logger="balsam.server.auth.throttle")
    yield caplog
    logger.removeHandler(caplog.handler)


@pytest.fixture
def api(app_factory: Callable[..., TestClient]) -> TestClient:
    client = app_factory(**LIMITS)
    for name in ("alice", "bob"):
        assert (
            client.post("/auth/password/register", json={"username": name, "password": f"pw-{name}"}).status_code == 201
        )
    return client


def _login(client: TestClient, username: str, password: str) -> tuple[int, str | None, str]:
    resp = client.post("/auth/password/login", data={"username": username, "password": password})
    return resp.status_code, resp.headers.get("retry-after"), resp.json().get("detail", "")


def test_distinct_failures_lock_the_username_until_the_window_ends(
    app_factory: Callable[..., TestClient], throttle_log: pytest.LogCaptureFixture
) -> None:
    api = app_factory(**{**LIMITS, "BALSAM_AUTH_LOGIN_FAILURE_WINDOW": str(SHORT_WINDOW)})
    for name in ("alice", "bob"):
        assert api.post("/auth/password/register", json={"username": name, "password": f"pw-{name}"}).status_code == 201
    started = time.monotonic()
    for attempt in range(3):
        assert _login(api, "alice", f"guess-{attempt}") == (401, None, "Unauthorized")
    status, retry_after, detail = _login(api, "alice", "pw-alice")  # even the right password waits
    assert status == 401 and retry_after is not None and 1 <= int(retry_after) <= SHORT_WINDOW
    assert "Too many failed logins" in detail
    # Other accounts are not affected.
    assert _login(api, "bob", "pw-bob")[0] == 200
    for _ in range(5):
        assert _login(api, "alice", "another-guess")[0] == 401
    # Logged once per lockout, not once per refusal.
    assert len([r for r in throttle_log.records if "user:alice" in r.getMessage()]) == 1
    # Refused attempts do not extend the lock: it ends with the window that began with the first failure.
    while _login(api, "alice", "pw-alice")[0] != 200:
        assert time.monotonic() - started < SHORT_WINDOW + 2, "the lock outlived its window"
        time.sleep(0.2)


def test_the_clients_retry_loop_on_a_typo_never_locks(api: TestClient) -> None:
    # The published client re-sends a failed login immediately, forever (spec §11): one typo, many requests.
    for _ in range(40):
        assert _login(api, "alice", "pw-alicf") == (401, None, "Unauthorized")
    assert _login(api, "alice", "pw-alice")[0] == 200


def test_refusals_do_no_hashing(api: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    for attempt in range(3):
        _login(api, "alice", f"guess-{attempt}")
    calls: list[str] = []

    def counting_verify(hashed: str, password: str) -> bool:
        calls.append(password)
        return False

    monkeypatch.setattr(password_login, "verify_password", counting_verify)
    for _ in range(10):
        assert _login(api, "alice", "pw-alice")[1] is not None
    assert calls == []


def test_success_clears_the_username_counter(api: TestClient, engine: Engine) -> None:
    assert _login(api, "alice", "wrong-1")[0] == 401
    assert _login(api, "alice", "wrong-2")[0] == 401
    assert _login(api, "alice", "pw-alice")[0] == 200
    with engine.connect() as conn:
        keys = set(conn.execute(text("SELECT key FROM login_throttle")).scalars())
    assert keys == {"addr:testclient"}  # the address keeps its count; the username starts afresh
    assert _login(api, "alice", "wrong-3")[0] == 401
    assert _login(api, "alice", "pw-alice")[0] == 200


def test_one_address_cannot_spray_usernames(app_factory: Callable[..., TestClient]) -> None:
    app_factory(**LIMITS).post("/auth/password/register", json={"username": "carol", "password": "pw-carol"})
    sprayer = TestClient(create_app(), client=("203.0.113.9", 40000))
    for i in range(6):
        assert _login(sprayer, f"user{i}", "Password1")[0] == 401
    status, retry_after, _ = _login(sprayer, "carol", "pw-carol")
    assert status == 401 and retry_after is not None
    # Another address logs in as usual.
    elsewhere = TestClient(create_app(), client=("198.51.100.7", 40000))
    assert _login(elsewhere, "carol", "pw-carol")[0] == 200


def test_operator_unlocks_a_user(api: TestClient, database_url: str) -> None:
    for attempt in range(3):
        _login(api, "alice", f"guess-{attempt}")
    assert _login(api, "alice", "pw-alice")[1] is not None
    result = run_cli("user", "unlock", "alice", env={"BALSAM_DATABASE_URL": database_url})
    assert result.returncode == 0 and "cleared 1" in result.stdout, result.stderr
    # Each worker trusts its memory of the lock for a few seconds, then reads the table again.
    deadline = time.monotonic() + 10
    while _login(api, "alice", "pw-alice")[0] != 200:
        assert time.monotonic() < deadline, "the unlock did not take effect"
        time.sleep(0.5)


def test_throttling_can_be_turned_off(app_factory: Callable[..., TestClient]) -> None:
    client = app_factory(BALSAM_AUTH_LOGIN_FAILURES_PER_USER="0", BALSAM_AUTH_LOGIN_FAILURES_PER_ADDRESS="0")
    client.post("/auth/password/register", json={"username": "dave", "password": "pw-dave"})
    for i in range(30):
        assert _login(client, "dave", f"guess-{i}")[1] is None
    assert _login(client, "dave", "pw-dave")[0] == 200


def test_keys() -> None:
    assert user_key("alice") == "user:alice"
    assert user_key("a\x00b").startswith("user#") and user_key("x" * 300).startswith("user#")
    assert address_key("192.0.2.1") == "addr:192.0.2.1"
    assert address_key("2001:db8:1:2:3:4:5:6") == address_key("2001:db8:1:2:ffff::1") == "addr:2001:db8:1:2::/64"
    assert address_key("::ffff:192.0.2.1") == "addr:192.0.2.1"


def _post_login(
    conn: http.client.HTTPConnection, username: str, password: str, forwarded_for: str | None = None
) -> tuple[int, str | None]:
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if forwarded_for:
        headers["X-Forwarded-For"] = forwarded_for
    conn.request("POST", "/auth/password/login", urlencode({"username": username, "password": password}), headers)
    resp = conn.getresponse()
    resp.read()
    return resp.status, resp.getheader("Retry-After")


@pytest.mark.serving
def test_throttling_is_shared_by_two_gunicorn_workers(
    server_env: dict[str, str], engine: Engine, tmp_path: Path
) -> None:
    env = {**server_env, **LIMITS, "BALSAM_AUTH_LOGIN_FAILURES_PER_USER": "4", "BALSAM_LOG_LEVEL": "INFO"}
    env["GUNICORN_KEEPALIVE"] = "300"  # the test holds one idle connection per worker
    with gunicorn(env, tmp_path, workers=2) as server:
        for name in ("alice", "bob"):
            reg = httpx.post(
                f"{server.base_url}/auth/password/register", json={"username": name, "password": f"pw-{name}"}
            )
            assert reg.status_code == 201
        first, second = one_connection_per_worker(server, 2)
        # The client's loop on a typo, through both workers: one distinct failure, no lock.
        for conn in (first, second) * 10:
            assert _post_login(conn, "bob", "pw-bo") == (401, None)
        assert _post_login(first, "bob", "pw-bob")[0] == 200
        # Four distinct failures, two in each worker: neither worker saw enough alone.
        for i, conn in enumerate((first, second, first, second)):
            assert _post_login(conn, "alice", f"guess-{i}") == (401, None)
        for conn in (first, second):
            status, retry_after = _post_login(conn, "alice", "pw-alice")
            assert status == 401 and retry_after is not None and int(retry_after) > 0
        # The address cap applies to the client address gunicorn reports (X-Forwarded-For from a trusted proxy).
        for i, conn in enumerate((first, second) * 3):
            assert _post_login(conn, f"sprayed-{i}", "Summer2026", forwarded_for="203.0.113.5")[0] == 401
        assert _post_login(first, "bob", "pw-bob", forwarded_for="203.0.113.5")[1] is not None
        assert _post_login(second, "bob", "pw-bob", forwarded_for="198.51.100.1")[0] == 200
        for conn in (first, second):
            conn.close()
    log = server.log()
    assert log.count("Login throttled: user:alice") == 1
    assert log.count("Login throttled: addr:203.0.113.5") == 1
