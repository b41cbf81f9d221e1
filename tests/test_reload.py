"""Zero-downtime reload: `kill -HUP <gunicorn master>` under continuous load fails no request and applies a
changed setting (from `.env`, re-read by the new workers)."""

from __future__ import annotations

import os
import signal
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from tests.ops_helpers import descendants, process_alive
from tests.serving import Gunicorn, gunicorn

pytestmark = pytest.mark.serving

LOAD_SECONDS = 10.0


class Load:
    """Threads sending requests back to back over keep-alive connections, recording every failure."""

    def __init__(self, base_url: str, token: str) -> None:
        self.base_url = base_url
        self.token = token
        self.stop = threading.Event()
        self.ok = 0
        self.failures: list[str] = []
        self.lock = threading.Lock()
        self.threads = [
            threading.Thread(target=self._run, args=("/healthz", {}), daemon=True),
            threading.Thread(target=self._run, args=("/sites/", {"Authorization": f"Bearer {token}"}), daemon=True),
        ]

    def _run(self, path: str, headers: dict[str, str]) -> None:
        with httpx.Client(base_url=self.base_url, timeout=60, headers=headers) as client:
            while not self.stop.is_set():
                try:
                    resp = client.get(path)
                    good = resp.status_code == 200
                    detail = f"{path}: HTTP {resp.status_code} {resp.text[:200]}"
                except httpx.HTTPError as exc:
                    good, detail = False, f"{path}: {type(exc).__name__}: {exc}"
                with self.lock:
                    if good:
                        self.ok += 1
                    else:
                        self.failures.append(detail)

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(90)


def _workers(server: Gunicorn) -> set[int]:
    return descendants(server.process.pid)


def _token_ttl(base_url: str) -> float:
    """Seconds between now and the `expiration` of a fresh login token."""
    resp = httpx.post(f"{base_url}/auth/password/login", data={"username": "reload", "password": "pw-reload"})
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


def test_hup_reloads_config_with_zero_failed_requests(server_env: dict[str, str], tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("BALSAM_AUTH_TOKEN_TTL=1111\n")
    with gunicorn(server_env, tmp_path, workers=2) as server:
        register = httpx.post(
            f"{server.base_url}/auth/password/register", json={"username": "reload", "password": "pw-reload"}
        )
        assert register.status_code == 201, register.text
        assert abs(_token_ttl(server.base_url) - 1111) < 60, "the server reads .env in its working directory"
        token = httpx.post(
            f"{server.base_url}/auth/password/login", data={"username": "reload", "password": "pw-reload"}
        ).json()["access_token"]
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
