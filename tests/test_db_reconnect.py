"""A connection that dies under a statement (the server terminated its backend, as a restart does): a read is
run again on a new connection, a write transaction that had not reached COMMIT is run again, and a stale
pooled connection is replaced at checkout without a round trip. Real PostgreSQL, real psycopg2."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session
from sqlalchemy.pool import QueuePool

from balsam.server.crud.transactions import run_write
from balsam.server.db.engine import get_engine, get_sessionmaker


@pytest.fixture
def sessions(server_env: dict[str, str], engine: Engine) -> Iterator[None]:
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS reconnect_probe (n integer)"))
        conn.execute(text("TRUNCATE reconnect_probe"))
    yield
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE reconnect_probe"))


def _terminate_when_running(engine: Engine, marker: str, killed: list[int]) -> threading.Thread:
    """Terminate the backend running a statement containing `marker`, once, as soon as it shows up."""

    def run() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                pids = conn.scalars(
                    text(
                        "WITH victim AS MATERIALIZED (SELECT pid FROM pg_stat_activity WHERE query LIKE :q"
                        " AND pid <> pg_backend_pid() AND state = 'active')"
                        " SELECT pid FROM victim WHERE pg_terminate_backend(pid)"
                    ),
                    {"q": f"%{marker}%"},
                ).all()
            if pids:
                killed.extend(pids)
                return
            time.sleep(0.02)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_read_is_run_again_on_a_new_connection(sessions: None, engine: Engine) -> None:
    killed: list[int] = []
    killer = _terminate_when_running(engine, "read-marker", killed)
    with get_sessionmaker()() as db:
        # First run: terminated after a moment; second run: completes.
        value = db.execute(text("SELECT 42 FROM pg_sleep(0.5) WHERE 'read-marker' <> ''")).scalar()
    killer.join()
    assert len(killed) == 1 and value == 42


def test_write_cut_before_commit_is_run_again(sessions: None, engine: Engine) -> None:
    killed: list[int] = []
    killer = _terminate_when_running(engine, "write-marker", killed)
    attempts: list[int] = []

    def work(db: Session) -> None:
        attempts.append(1)
        db.execute(text("INSERT INTO reconnect_probe VALUES (1)"))
        db.execute(text("SELECT pg_sleep(0.5) WHERE 'write-marker' <> ''"))

    with get_sessionmaker()() as db:
        run_write(db, lambda: work(db))
    killer.join()
    assert len(killed) == 1 and len(attempts) == 2
    with engine.connect() as conn:  # the cut attempt rolled back; the second committed once
        assert conn.execute(text("SELECT count(*) FROM reconnect_probe")).scalar() == 1


def test_stale_pooled_connection_is_replaced_at_checkout(sessions: None, engine: Engine) -> None:
    with get_sessionmaker()() as db:
        first = db.execute(text("SELECT pg_backend_pid()")).scalar()
    # The connection is back in the pool, idle; the server now closes it (as a restart would).
    with engine.connect() as conn:
        assert conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first}).scalar()
    time.sleep(0.2)
    with get_sessionmaker()() as db:
        # Driver SQL: not re-run on failure, so only the checkout check can have replaced the connection.
        second = db.connection().exec_driver_sql("SELECT pg_backend_pid()").scalar()
    pool = get_engine().pool
    assert isinstance(pool, QueuePool)
    assert second != first and pool.checkedout() == 0
