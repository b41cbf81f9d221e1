"""Migration 0003 (leases move from `jobs.session_id` to `job_leases`) on a database with data in it: held
jobs at upgrade time keep their holder, a lease taken by a transaction still open when the upgrade starts is
carried over, the new code works on the result, and the downgrade puts every lease back on `jobs`."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, inspect, select, text
from sqlalchemy.exc import IntegrityError

from balsam.server.db.migrate import head_revision, upgrade
from balsam.server.db.tables import Job
from tests.harness import PgEndpoint
from tests.migration_db import database_at, downgrade


@pytest.fixture
def db_0002(pg: PgEndpoint) -> Iterator[Engine]:
    with database_at(pg, "balsam_m0003", "0002") as engine:
        yield engine


def _seed(engine: Engine) -> dict[str, int]:
    """A user, site, app, two sessions and 6 jobs, as the 0002 schema stores them: jobs 1-2 held by session A
    (one RUNNING), job 3 held by session B, jobs 4-6 free."""
    with engine.begin() as conn:
        user = conn.execute(text("INSERT INTO users (username) VALUES ('u') RETURNING id")).scalar_one()
        site = conn.execute(
            text("INSERT INTO sites (owner_id, name, path) VALUES (:u, 's', '/s') RETURNING id"), {"u": user}
        ).scalar_one()
        app = conn.execute(
            text("INSERT INTO apps (site_id, name) VALUES (:s, 'a') RETURNING id"), {"s": site}
        ).scalar_one()
        a, b = (
            conn.execute(text("INSERT INTO sessions (site_id) VALUES (:s) RETURNING id"), {"s": site}).scalar_one()
            for _ in range(2)
        )
        states = ["RUNNING", "PREPROCESSED", "PREPROCESSED", "PREPROCESSED", "RUN_DONE", "STAGED_IN"]
        holders = [a, a, b, None, None, None]
        for i, (state, holder) in enumerate(zip(states, holders, strict=True)):
            conn.execute(
                text("INSERT INTO jobs (id, app_id, workdir, state, session_id) VALUES (:id, :app, :w, :state, :sid)"),
                {"id": i + 1, "app": app, "w": f"w{i}", "state": state, "sid": holder},
            )
        conn.execute(text("SELECT setval(pg_get_serial_sequence('jobs', 'id'), 6)"))
    return {"user": user, "site": site, "app": app, "a": a, "b": b}


def _holders_0002(engine: Engine) -> dict[int, int | None]:
    with engine.connect() as conn:
        return {r[0]: r[1] for r in conn.execute(text("SELECT id, session_id FROM jobs ORDER BY id"))}


def _holders(engine: Engine) -> dict[int, int | None]:
    with engine.connect() as conn:
        return {r.id: r.session_id for r in conn.execute(select(Job.id, Job.session_id).order_by(Job.id))}


def test_upgrade_keeps_held_jobs_and_downgrade_restores_them(db_0002: Engine) -> None:
    ids = _seed(db_0002)
    before = _holders_0002(db_0002)
    assert before == {1: ids["a"], 2: ids["a"], 3: ids["b"], 4: None, 5: None, 6: None}

    # A launcher on the old release acquires job 4 in a transaction that is still open when the upgrade
    # starts: the upgrade waits for it (LOCK TABLE) and carries its lease over.
    old_server = db_0002.connect()
    old_server.execute(text("UPDATE jobs SET session_id = :b WHERE id = 4"), {"b": ids["b"]})
    migrating = threading.Thread(target=upgrade, args=(db_0002,))
    migrating.start()
    migrating.join(timeout=2)
    assert migrating.is_alive(), "the upgrade must wait for the open transaction that holds job 4"
    old_server.commit()
    old_server.close()
    migrating.join(timeout=120)
    assert not migrating.is_alive()

    with db_0002.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == head_revision()
        rows = conn.execute(text("SELECT job_id, session_id FROM job_leases ORDER BY job_id")).all()
    leases = {row[0]: row[1] for row in rows}
    assert leases == {1: ids["a"], 2: ids["a"], 3: ids["b"], 4: ids["b"]}
    assert "session_id" not in {c["name"] for c in inspect(db_0002).get_columns("jobs")}
    assert _holders(db_0002) == {**before, 4: ids["b"]}

    # The new code on the upgraded data: expiring session A times out its RUNNING job and frees both of its
    # jobs; a job held by B cannot be leased again (primary key).
    from sqlalchemy.orm import Session

    from balsam.server.crud.sessions import expire_sessions, utcnow

    with Session(db_0002) as db, db.begin():
        result = expire_sessions(db, [ids["a"]], utcnow())
    assert result.session_ids == [ids["a"]] and result.event_count == 1
    with db_0002.connect() as conn:
        assert conn.execute(text("SELECT state FROM jobs WHERE id = 1")).scalar() == "RUN_TIMEOUT"
    assert _holders(db_0002) == {1: None, 2: None, 3: ids["b"], 4: ids["b"], 5: None, 6: None}

    # Downgrade: the leases go back into jobs.session_id, with the schema of 0002.
    downgrade(db_0002, "0002")
    assert "job_leases" not in inspect(db_0002).get_table_names()
    assert _holders_0002(db_0002) == {1: None, 2: None, 3: ids["b"], 4: ids["b"], 5: None, 6: None}
    indexes = {ix["name"]: ix for ix in inspect(db_0002).get_indexes("jobs")}
    assert {"ix_jobs_session_id", "ix_jobs_app_id", "ix_jobs_acquirable"} <= set(indexes)
    with db_0002.connect() as conn:  # the old FK is back: a lease on a missing session is refused
        with pytest.raises(IntegrityError, match="fk_jobs_session_id_sessions"):
            conn.execute(text("UPDATE jobs SET session_id = 999999 WHERE id = 5"))
        conn.rollback()

    # And up again, round trip.
    upgrade(db_0002)
    assert _holders(db_0002) == {1: None, 2: None, 3: ids["b"], 4: ids["b"], 5: None, 6: None}
