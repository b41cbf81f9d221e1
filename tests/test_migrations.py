"""Migrations: fresh database, re-run, two processes at once, and models equal to migrations."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from balsam.server.db.migrate import head_revision, upgrade
from balsam.server.db.tables import Base
from tests.harness import PgEndpoint


@pytest.fixture
def fresh_db(pg: PgEndpoint) -> Iterator[str]:
    name = pg.create_database("balsam_migrate")
    yield pg.url(name)
    pg.drop_database(name)


def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_fresh_database_and_rerun(fresh_db: str) -> None:
    assert _tables(fresh_db) == set()
    before, after = upgrade(fresh_db)
    assert before is None and after == head_revision()
    expected = {t.name for t in Base.metadata.sorted_tables} | {"alembic_version"}
    assert _tables(fresh_db) == expected
    assert upgrade(fresh_db) == (head_revision(), head_revision())


def test_models_equal_migrations(fresh_db: str) -> None:
    upgrade(fresh_db)
    engine = create_engine(fresh_db)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
            diff = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    assert diff == []


def test_two_processes_migrate_at_once(fresh_db: str) -> None:
    env_url = fresh_db
    code = "import sys; from balsam.server.db.migrate import upgrade; print(upgrade(sys.argv[1]))"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, env_url], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    outputs = sorted(out.strip() for out, _ in results)
    head = head_revision()
    # Exactly one process applied the migration; the other waited on the lock and found nothing to do.
    assert outputs == sorted([f"(None, {head!r})", f"({head!r}, {head!r})"])
    engine = create_engine(fresh_db)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
    engine.dispose()


def test_cli_migrate(fresh_db: str) -> None:
    # The whole environment: a bare interpreter (the Nix check's) finds its packages through PYTHONPATH.
    env = {**os.environ, "BALSAM_DATABASE_URL": fresh_db}
    cmd = [sys.executable, "-m", "balsam.cli", "server", "migrate"]
    first = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert first.returncode == 0, first.stderr
    assert f"schema: empty -> {head_revision()}" in first.stdout
    second = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert second.returncode == 0 and f"schema already at {head_revision()}" in second.stdout
    bad = subprocess.run(
        cmd, env={**env, "BALSAM_DATABASE_URL": "sqlite:///x"}, capture_output=True, text=True, timeout=60, check=False
    )
    assert bad.returncode == 2 and "Invalid setting BALSAM_DATABASE_URL" in bad.stderr
