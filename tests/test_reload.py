"""Zero-downtime reload: `kill -HUP <gunicorn master>` under continuous load fails no request and applies a
changed setting (from `.env`, re-read by the new workers)."""

from __future__ import annotations

import os
import re
import signal
import socket
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine

from tests.ops_helpers import descendants, process_alive
from tests.serving import Gunicorn, Load, gunicorn

pytestmark = pytest.mark.serving

LOAD_SECONDS = 10.0


def _workers(server: Gunicorn) -> set[int]:
    return descendants(server.process.pid)


def _token_ttl(base_url: str) -> float:
    """Seconds between now and the `expiration` of a fresh login token."""
    # A generous timeout: during a reload on a loaded machine the new workers may still be importing the app.
    resp = httpx.post(
        f"{base_url}/auth/password/login", data={"username": "reload", "password": "pw-reload"}, timeout=60
    )
    assert resp.status_code == 200, resp.text
    expiration = datetime.fromisoformat(resp.json()["expiration"])
    return (expiration - datetime.now(UTC).replace(tzinfo=None)).total_seconds()


def _hup_and_wait(server: Gunicorn, old_workers: set[int], ttl: int) -> set[int]:
    """HUP the master; return the new workers once every old one is gone and the new TTL is served."""
    os.kill(server.process.pid, signal.SIGHUP)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        current = {pid for pid in _workers(server) if process_alive(pid)}
        if current and not current & old_workers and abs(_token_ttl(server.base_url) - ttl) < 60:
            return current
        time.sleep(0.3)
    raise AssertionError(f"reload to token_ttl={ttl} did not complete:\n{server.log()[-4000:]}")


def _register_and_login(base_url: str) -> str:
    register = httpx.post(f"{base_url}/auth/password/register", json={"username": "reload", "password": "pw-reload"})
    assert register.status_code == 201, register.text
    login = httpx.post(f"{base_url}/auth/password/login", data={"username": "reload", "password": "pw-reload"})
    return str(login.json()["access_token"])


def test_hup_reloads_config_with_zero_failed_requests(
    server_env: dict[str, str], engine: Engine, tmp_path: Path
) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("BALSAM_AUTH_TOKEN_TTL=1111\n")
    with gunicorn(server_env, tmp_path, workers=2) as server:
        token = _register_and_login(server.base_url)
        assert abs(_token_ttl(server.base_url) - 1111) < 60, "the server reads .env in its working directory"
        generations = [_workers(server)]
        assert len(generations[0]) == 2

        started = time.monotonic()
        with Load(server.base_url, token) as load:
            time.sleep(1.5)
            dotenv.write_text("BALSAM_AUTH_TOKEN_TTL=2222\n")
            generations.append(_hup_and_wait(server, generations[-1], 2222))
            time.sleep(1.5)
            dotenv.write_text("BALSAM_AUTH_TOKEN_TTL=3333\n")
            generations.append(_hup_and_wait(server, generations[-1], 3333))
            time.sleep(max(0.0, LOAD_SECONDS - (time.monotonic() - started)))

        assert server.process.poll() is None, "the master survives both reloads"
        assert load.failures == []
        assert load.ok > 100, "the load actually ran across the reloads"
        assert generations[0].isdisjoint(generations[1]) and generations[1].isdisjoint(generations[2])
        assert abs(_token_ttl(server.base_url) - 3333) < 60
        assert "Handling signal: hup" in server.log()


def test_hup_with_broken_settings_keeps_the_old_workers_serving(
    server_env: dict[str, str], engine: Engine, tmp_path: Path
) -> None:
    """`engine` makes the shared database get cleaned after the test (conftest's `_clean_tables`)."""
    dotenv = tmp_path / ".env"
    dotenv.write_text("BALSAM_AUTH_TOKEN_TTL=1111\n")
    with gunicorn(server_env, tmp_path, workers=2) as server:
        token = _register_and_login(server.base_url)
        workers = _workers(server)

        with Load(server.base_url, token) as load:
            dotenv.write_text("BALSAM_AUTH_TOKEN_TTL=-5\n")
            os.kill(server.process.pid, signal.SIGHUP)
            deadline = time.monotonic() + 90
            while "reload refused" not in server.log() and time.monotonic() < deadline:
                time.sleep(0.2)
            assert "Invalid setting BALSAM_AUTH_TOKEN_TTL" in server.log()
            time.sleep(2)  # requests keep flowing to the old workers meanwhile
            assert _workers(server) == workers, "the running workers were kept"
            assert abs(_token_ttl(server.base_url) - 1111) < 60

            dotenv.write_text("BALSAM_AUTH_TOKEN_TTL=2222\n")
            new_workers = _hup_and_wait(server, workers, 2222)

        assert load.failures == []
        assert load.ok > 20
        assert len(new_workers) == 2, "the next HUP restores the configured number of workers"


def _read_response(sock: socket.socket) -> bytes:
    """One HTTP/1.1 response with a Content-Length body (b"" if the server closed the connection)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def test_request_on_idle_keep_alive_connection_during_reload_is_answered(
    server_env: dict[str, str], tmp_path: Path
) -> None:
    """The race behind failed requests on reload, made deterministic: a client sends its next request on a
    keep-alive connection after the worker holding it has begun shutting down."""
    with gunicorn({**server_env, "GUNICORN_KEEPALIVE": "30"}, tmp_path, workers=1) as server:
        port = int(server.base_url.rsplit(":", 1)[1])
        request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
            sock.sendall(request)
            assert _read_response(sock).startswith(b"HTTP/1.1 200")
            (old_worker,) = _workers(server)

            os.kill(server.process.pid, signal.SIGHUP)
            deadline = time.monotonic() + 90
            while f"[{old_worker}] [INFO] Shutting down" not in server.log() and time.monotonic() < deadline:
                time.sleep(0.1)
            assert f"[{old_worker}] [INFO] Shutting down" in server.log()

            sock.sendall(request)
            response = _read_response(sock)
            assert response.startswith(b"HTTP/1.1 200"), response
            assert b"\r\nconnection: close\r\n" in response.lower(), "the client is told not to reuse it"
            assert sock.recv(1) == b"", "the old worker closes the connection after that response"
        wait_gone = time.monotonic() + 90
        while process_alive(old_worker) and time.monotonic() < wait_gone:
            time.sleep(0.1)
        assert not process_alive(old_worker)
