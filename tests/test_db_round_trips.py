"""What a request costs in database round trips, counted on the wire (tests/pg_proxy.py) with the real
PostgreSQL and psycopg2: an authenticated single-row read is one query, with no ping on checkout and no
BEGIN/ROLLBACK around it; a write is BEGIN READ WRITE, its statements, COMMIT, and no SET commands."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from tests.harness import PgEndpoint
from tests.pg_proxy import PgProxy, pg_proxy
from tests.sessions_helpers import make_app, make_site

USER_CHECK_SECONDS = 5


@pytest.fixture
def proxied(pg: PgEndpoint, database_url: str) -> Iterator[PgProxy]:
    with pg_proxy(pg) as proxy:
        yield proxy


@pytest.fixture
def alice(app_factory: Callable[..., TestClient], proxied: PgProxy, database_url: str, engine: Engine) -> TestClient:
    url = proxied.url(str(make_url(database_url).database), make_url(database_url).username or "postgres")
    client = app_factory(BALSAM_DATABASE_URL=url, BALSAM_AUTH_USER_CHECK_SECONDS=str(USER_CHECK_SECONDS))
    assert client.post("/auth/password/register", json={"username": "alice", "password": "pw"}).status_code == 201
    token = client.post("/auth/password/login", data={"username": "alice", "password": "pw"}).json()
    client.headers["Authorization"] = f"Bearer {token['access_token']}"
    return client


def _is_user_check(query: str) -> bool:
    return "FROM users" in query


def test_single_row_read_is_one_round_trip(alice: TestClient, proxied: PgProxy) -> None:
    site = make_site(alice)
    app = make_app(alice, site)
    job = alice.post("/jobs/", json=[{"app_id": app, "workdir": "w"}]).json()[0]
    assert alice.get(f"/jobs/{job['id']}").status_code == 200  # warm: connections, the user check
    last_check = time.monotonic()
    for _ in range(20):
        mark = proxied.traffic.snapshot()
        started = time.monotonic()
        assert alice.get(f"/jobs/{job['id']}").status_code == 200
        sent = proxied.traffic.since(mark)
        checks = [q for q in sent if _is_user_check(q)]
        reads = [q for q in sent if not _is_user_check(q)]
        assert len(reads) == 1 and reads[0].lstrip().upper().startswith("SELECT"), sent
        assert not any(q.strip().upper() in {"BEGIN", "COMMIT", "ROLLBACK", "SELECT 1"} for q in sent), sent
        # The account lookup is cached per worker for USER_CHECK_SECONDS: at most one per window.
        if checks:
            assert len(checks) == 1 and started - last_check >= USER_CHECK_SECONDS - 0.5, sent
            last_check = started
    # Nothing but simple-protocol queries went out (no prepared statements, no hidden messages).
    assert set(proxied.traffic.types) <= {"Q", "X", "p"}, proxied.traffic.types


def test_write_is_one_transaction_without_set_commands(alice: TestClient, proxied: PgProxy) -> None:
    site = make_site(alice)
    session = alice.post("/sessions/", json={"site_id": site}).json()["id"]
    alice.put(f"/sessions/{session}")
    mark = proxied.traffic.snapshot()
    assert alice.put(f"/sessions/{session}").status_code == 200
    sent = [q for q in proxied.traffic.since(mark) if not _is_user_check(q)]
    assert sent[0] == "BEGIN READ WRITE" and sent[-1] == "COMMIT", sent
    assert len(sent) == 4, sent  # lock the session row, update its heartbeat
    assert not any(q.upper().startswith(("SET ", "SHOW ")) for q in sent), sent


def test_write_outside_a_transaction_is_refused(alice: TestClient, proxied: PgProxy) -> None:
    """Reads run as autocommit statements; a write that forgot `begin()` must fail, not autocommit."""
    from sqlalchemy import text
    from sqlalchemy.exc import InternalError

    from balsam.server.db.engine import get_sessionmaker

    with get_sessionmaker()() as db:
        with pytest.raises(InternalError, match="read-only transaction"):
            db.execute(text("INSERT INTO users (username) VALUES ('sneaky')"))
        db.rollback()
        with db.begin():
            db.execute(text("INSERT INTO users (username) VALUES ('explicit')"))
        assert db.execute(text("SELECT count(*) FROM users WHERE username = 'explicit'")).scalar() == 1
