"""`/healthz` stays liveness; `/readyz` answers 200 only when the database answers and its schema is at the
migration head this code ships."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from balsam.server.db.migrate import head_revision, upgrade
from tests.harness import PgEndpoint
from tests.serving import free_port


@pytest.fixture
def other_db(pg: PgEndpoint) -> Iterator[str]:
    name = pg.create_database("balsam_ready")
    yield pg.url(name)
    pg.drop_database(name)


def test_ready_at_head(client: TestClient) -> None:
    resp = client.get("/readyz")
    assert resp.status_code == 200
    assert resp.json() == {
        "status": "ready",
        "database": "ok",
        "schema": head_revision(),
        "expected_schema": head_revision(),
    }


def test_not_ready_on_an_older_schema_or_none(app_factory: Callable[..., TestClient], other_db: str) -> None:
    empty = app_factory(BALSAM_DATABASE_URL=other_db)
    resp = empty.get("/readyz")
    assert resp.status_code == 503
    assert resp.json()["database"] == "not migrated" and resp.json()["status"] == "not ready"
    assert empty.get("/healthz").status_code == 200  # alive: the process runs and the database answers

    upgrade(other_db, "0001")
    old = app_factory(BALSAM_DATABASE_URL=other_db).get("/readyz")
    assert old.status_code == 503
    assert old.json() == {"status": "not ready", "database": "ok", "schema": "0001", "expected_schema": head_revision()}

    upgrade(other_db)
    assert app_factory(BALSAM_DATABASE_URL=other_db).get("/readyz").status_code == 200


def test_not_ready_without_a_database(app_factory: Callable[..., TestClient]) -> None:
    gone = app_factory(
        BALSAM_DATABASE_URL=f"postgresql://nobody@127.0.0.1:{free_port()}/balsam?connect_timeout=2",
        BALSAM_DATABASE_RECONNECT_SECONDS="0",
    )
    resp = gone.get("/readyz")
    assert resp.status_code == 503 and resp.json()["database"] == "unavailable"
