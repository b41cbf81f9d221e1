"""Migration 0006 (the foreign keys of `job_leases` become statement triggers): every way a job or a session
goes away still ends its leases (direct deletes and the cascades from apps and sites), other
leases stay, and the downgrade brings the keys back with the same data."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, inspect, text

from balsam.server.db.migrate import upgrade
from tests.harness import PgEndpoint
from tests.migration_db import database_at, downgrade


@pytest.fixture
def db_0005(pg: PgEndpoint) -> Iterator[Engine]:
    with database_at(pg, "balsam_m0006", "0005") as engine:
        yield engine


def _seed(engine: Engine) -> dict[str, int]:
    """Two sites (one with a batch job), an app on each, a session per site (and one on the batch job), and
    jobs 1-8 all leased: 1-3 by session `s1`, 4 by `s1b` (the batch job's), 5-8 by `s2` on the second site."""
    ids: dict[str, int] = {}
    with engine.begin() as conn:
        user = conn.execute(text("INSERT INTO users (username) VALUES ('u') RETURNING id")).scalar_one()
        for k in (1, 2):
            ids[f"site{k}"] = conn.execute(
                text("INSERT INTO sites (owner_id, name, path) VALUES (:u, :n, '/s') RETURNING id"),
                {"u": user, "n": f"s{k}"},
            ).scalar_one()
            ids[f"app{k}"] = conn.execute(
                text("INSERT INTO apps (site_id, name) VALUES (:s, 'a') RETURNING id"), {"s": ids[f"site{k}"]}
            ).scalar_one()
        ids["batch"] = conn.execute(
            text(
                "INSERT INTO batch_jobs (site_id, project, queue, num_nodes, wall_time_min, job_mode, state)"
                " VALUES (:s, 'p', 'q', 1, 10, 'mpi', 'queued') RETURNING id"
            ),
            {"s": ids["site1"]},
        ).scalar_one()
        for name, site, batch in (("s1", "site1", None), ("s1b", "site1", ids["batch"]), ("s2", "site2", None)):
            ids[name] = conn.execute(
                text("INSERT INTO sessions (site_id, batch_job_id) VALUES (:s, :b) RETURNING id"),
                {"s": ids[site], "b": batch},
            ).scalar_one()
        holders = ["s1", "s1", "s1", "s1b", "s2", "s2", "s2", "s2"]
        for i, holder in enumerate(holders, start=1):
            app = ids["app1"] if i <= 4 else ids["app2"]
            conn.execute(
                text("INSERT INTO jobs (id, app_id, workdir, state) VALUES (:id, :app, :w, 'PREPROCESSED')"),
                {"id": i, "app": app, "w": f"w{i}"},
            )
            conn.execute(text("INSERT INTO job_leases VALUES (:j, :s)"), {"j": i, "s": ids[holder]})
    return ids


def _leases(engine: Engine) -> dict[int, int]:
    with engine.connect() as conn:
        return dict(conn.execute(text("SELECT job_id, session_id FROM job_leases ORDER BY job_id")).tuples().all())


def test_triggers_end_leases_of_deleted_jobs_and_sessions(db_0005: Engine) -> None:
    ids = _seed(db_0005)
    upgrade(db_0005, "0006")
    assert inspect(db_0005).get_foreign_keys("job_leases") == []
    assert _leases(db_0005) == {1: ids["s1"], 2: ids["s1"], 3: ids["s1"], 4: ids["s1b"]} | {
        j: ids["s2"] for j in (5, 6, 7, 8)
    }
    with db_0005.begin() as conn:
        conn.execute(text("DELETE FROM jobs WHERE id = ANY(ARRAY[1, 5])"))  # two jobs in one statement
    assert set(_leases(db_0005)) == {2, 3, 4, 6, 7, 8}
    with db_0005.begin() as conn:
        conn.execute(text("DELETE FROM batch_jobs WHERE id = :b"), {"b": ids["batch"]})
    # sessions.batch_job_id is SET NULL: the session outlives its batch job, and so does its lease
    assert _leases(db_0005)[4] == ids["s1b"]
    with db_0005.begin() as conn:
        conn.execute(text("DELETE FROM sessions WHERE id = :s"), {"s": ids["s1"]})
    assert set(_leases(db_0005)) == {4, 6, 7, 8}
    with db_0005.begin() as conn:  # an app's jobs go by cascade, and their leases with them
        conn.execute(text("DELETE FROM apps WHERE id = :a"), {"a": ids["app2"]})
    assert set(_leases(db_0005)) == {4}
    with db_0005.begin() as conn:  # a site's sessions go by cascade too
        conn.execute(
            text("INSERT INTO jobs (id, app_id, workdir, state) VALUES (9, :a, 'w9', 'STAGED_IN')"), {"a": ids["app1"]}
        )
        conn.execute(text("INSERT INTO job_leases VALUES (9, :s)"), {"s": ids["s2"]})
        conn.execute(text("DELETE FROM sites WHERE id = :s"), {"s": ids["site2"]})
    assert 9 not in _leases(db_0005)


def test_downgrade_restores_the_keys(db_0005: Engine) -> None:
    ids = _seed(db_0005)
    upgrade(db_0005, "0006")
    before = _leases(db_0005)
    downgrade(db_0005, "0005")
    keys = {
        fk["referred_table"]: fk["options"].get("ondelete") for fk in inspect(db_0005).get_foreign_keys("job_leases")
    }
    assert keys == {"jobs": "CASCADE", "sessions": "CASCADE"}
    assert _leases(db_0005) == before
    with db_0005.begin() as conn:  # the keys cascade again, with no trigger left behind
        assert (
            conn.execute(text("SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'job_leases_release%'")).scalar() == 0
        )
        conn.execute(text("DELETE FROM sessions WHERE id = :s"), {"s": ids["s2"]})
    assert set(_leases(db_0005)) == {1, 2, 3, 4}
    upgrade(db_0005, "0006")  # and up again
    assert inspect(db_0005).get_foreign_keys("job_leases") == []
