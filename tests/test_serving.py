"""The API served by a real gunicorn with uvicorn workers, as the deployment guide runs it."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.conftest import TEST_SECRET
from tests.serving import gunicorn

pytestmark = pytest.mark.serving


def test_gunicorn_serves_docs_login_and_sites(database_url: str, redis_params: dict[str, str], tmp_path: Path) -> None:
    env = {
        "BALSAM_DATABASE_URL": database_url,
        "BALSAM_AUTH_SECRET_KEY": TEST_SECRET,
        "BALSAM_REDIS_PARAMS": json.dumps(redis_params),
    }
    with gunicorn(env, tmp_path, workers=2) as server, httpx.Client(base_url=server.base_url, timeout=10) as http:
        docs = http.get("/docs")
        assert docs.status_code == 200 and "swagger" in docs.text.lower()
        assert http.get("/openapi.json").json()["info"]["title"] == "Balsam"
        assert http.get("/healthz").json() == {"status": "ok", "database": "ok", "redis": "ok"}
        assert http.post("/auth/password/register", json={"username": "gus", "password": "pw"}).status_code == 201
        token = http.post("/auth/password/login", data={"username": "gus", "password": "pw"}).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        # Tokens are valid across workers: every worker reads the same key.
        for _ in range(6):
            assert http.get("/sites/", headers=auth).status_code == 200
        created = http.post("/sites/", json={"name": "s", "path": "/s"}, headers=auth)
        assert created.status_code == 201
        assert http.delete(f"/sites/{created.json()['id']}", headers=auth).status_code == 204
        # Collection routes without the trailing slash redirect to the canonical form (spec §0).
        redirect = http.get("/sites", headers=auth)
        assert redirect.status_code == 307 and redirect.headers["location"].endswith("/sites/")
        assert http.get("/no-such-route").status_code == 404
    # The effective settings are logged at start-up, without the secret.
    assert "Effective settings" in server.log()
    assert TEST_SECRET not in server.log()


def test_healthz_with_redis_disabled(database_url: str, tmp_path: Path) -> None:
    env = {
        "BALSAM_DATABASE_URL": database_url,
        "BALSAM_AUTH_SECRET_KEY": TEST_SECRET,
    }
    with gunicorn(env, tmp_path, workers=1) as server:
        assert httpx.get(f"{server.base_url}/healthz").json()["redis"] == "disabled"
