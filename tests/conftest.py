"""Shared fixtures: one real PostgreSQL and one real Redis per test session, a migrated database,
and a clean slate (TRUNCATE) between tests."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text

from tests.harness import PgEndpoint, postgres, redis_server

TEST_SECRET = "test-secret-key-0123456789abcdef"
# Settings must not leak in from a developer's shell or .env (BALSAM_TEST_* configure the harness itself).
for _name in list(os.environ):
    if _name.startswith("BALSAM_") and not _name.startswith("BALSAM_TEST_") and _name != "BALSAM_EMBEDDED_PG_FSYNC":
        del os.environ[_name]


@pytest.fixture(scope="session")
def servers_dir() -> Iterator[Path]:
    # Not under pytest's basetemp: run as root, PostgreSQL runs as an unprivileged user that must traverse the
    # path, and every new pytest session on the machine strips other users' access from /tmp/pytest-of-<user>.
    path = Path(tempfile.mkdtemp(prefix="balsam-test-servers-"))
    path.chmod(0o711)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def pg(servers_dir: Path) -> Iterator[PgEndpoint]:
    with postgres(servers_dir) as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def redis_params(servers_dir: Path) -> Iterator[dict[str, str]]:
    with redis_server(servers_dir) as params:
        yield params


@pytest.fixture(scope="session")
def database_url(pg: PgEndpoint) -> Iterator[str]:
    from balsam.server.db.migrate import upgrade

    name = pg.create_database()
    url = pg.url(name)
    upgrade(url)
    yield url
    pg.drop_database(name)


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    eng = create_engine(database_url)
    yield eng
    eng.dispose()


def reset_caches() -> None:
    from balsam.server.conf import get_settings
    from balsam.server.db.engine import reset_engine
    from balsam.server.pubsub import get_publisher

    get_settings.cache_clear()
    reset_engine()
    get_publisher.cache_clear()


@pytest.fixture
def server_env(database_url: str, redis_params: dict[str, str]) -> Iterator[dict[str, str]]:
    """The environment of a server under test; tests may edit it before building the app."""
    env = {
        "BALSAM_DATABASE_URL": database_url,
        "BALSAM_AUTH_SECRET_KEY": TEST_SECRET,
        "BALSAM_REDIS_PARAMS": json.dumps(redis_params),
        "BALSAM_LOG_LEVEL": "WARNING",
        # Production's default is off; the tests create their users through the API, as upstream's tests do.
        "BALSAM_AUTH_ALLOW_REGISTRATION": "true",
    }
    saved = dict(os.environ)
    os.environ.update(env)
    reset_caches()
    yield env
    # Restore everything: tests (and app_factory) may have added settings of their own.
    os.environ.clear()
    os.environ.update(saved)
    reset_caches()


@pytest.fixture(autouse=True)
def _clean_tables(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "engine" not in request.fixturenames:
        return
    eng: Engine = request.getfixturevalue("engine")
    with eng.begin() as conn:
        tables = [
            r[0]
            for r in conn.execute(
                text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'")
            )
        ]
        conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))


@pytest.fixture
def app_factory(server_env: dict[str, str], engine: Engine) -> Callable[..., TestClient]:
    """Build a fresh app (after editing os.environ if needed) and return a TestClient for it."""

    def build(**env: str) -> TestClient:
        os.environ.update(env)
        reset_caches()
        from balsam.server.main import create_app

        return TestClient(create_app())

    return build


@pytest.fixture
def client(app_factory: Callable[..., TestClient]) -> TestClient:
    return app_factory()


@pytest.fixture
def make_user(client: TestClient) -> Callable[[str], TestClient]:
    """Register `name`, log in, and return a client that sends that user's bearer token."""
    from balsam.server.main import create_app

    def make(name: str | None = None) -> TestClient:
        name = name or f"user-{uuid.uuid4().hex[:8]}"
        assert (
            client.post("/auth/password/register", json={"username": name, "password": "pw-" + name}).status_code == 201
        )
        token = client.post("/auth/password/login", data={"username": name, "password": "pw-" + name}).json()
        user_client = TestClient(create_app())
        user_client.headers["Authorization"] = f"Bearer {token['access_token']}"
        return user_client

    return make


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium for the browser tests (tests/browser.py)."""
    from tests.browser import launch_chromium

    yield from launch_chromium()
