"""A deleted account's token stops working within 5 s on a real gunicorn with two workers, each of which
caches for BALSAM_AUTH_USER_CHECK_SECONDS (default 2 s) that the account exists. Real clock, real database."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, text

from tests.conftest import TEST_SECRET
from tests.serving import gunicorn

pytestmark = pytest.mark.serving

LIMIT_SECONDS = 5.0


def test_deleted_user_token_stops_working_within_5_s(database_url: str, engine: Engine, tmp_path: Path) -> None:
    env = {"BALSAM_DATABASE_URL": database_url, "BALSAM_AUTH_SECRET_KEY": TEST_SECRET, "BALSAM_LOG_LEVEL": "WARNING"}
    with gunicorn(env, tmp_path, workers=2) as server:
        http = httpx.Client(base_url=server.base_url, timeout=30)
        assert http.post("/auth/password/register", json={"username": "del", "password": "pw"}).status_code == 201
        token = http.post("/auth/password/login", data={"username": "del", "password": "pw"}).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}", "Connection": "close"}  # new connection: either worker

        def status() -> int:
            return httpx.get(f"{server.base_url}/sites/", headers=auth, timeout=30).status_code

        # Both workers have seen (and cached) the account.
        assert [status() for _ in range(12)] == [200] * 12
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM users WHERE username = 'del'"))
        deleted = time.monotonic()
        last_ok = None
        while time.monotonic() - deleted < LIMIT_SECONDS + 1.5:
            code = status()
            assert code in (200, 401)
            if code == 200:
                last_ok = time.monotonic() - deleted
            time.sleep(0.05)
        assert last_ok is None or last_ok < LIMIT_SECONDS, f"accepted {last_ok:.2f} s after the delete"
        assert [status() for _ in range(12)] == [401] * 12
