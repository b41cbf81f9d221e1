"""`balsam server backup` / `restore`: a verified round trip, refusal rules, retention and failures."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from balsam.server.ops.backup import (
    BACKUP_NAME,
    BackupError,
    apply_retention,
    find_pg_tool,
    libpq_args,
    list_backups,
    server_major_version,
)
from tests.conftest import TEST_SECRET, reset_caches
from tests.harness import PgEndpoint
from tests.ops_helpers import run_cli, snapshot


@pytest.fixture
def own_db(pg: PgEndpoint) -> Iterator[tuple[str, str]]:
    """A migrated database of this test's own, which the test may drop and recreate: (name, url)."""
    from balsam.server.db.migrate import upgrade

    name = pg.create_database("balsam_ops")
    url = pg.url(name)
    upgrade(url)
    yield name, url
    pg.drop_database(name)


@pytest.fixture
def api(own_db: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """A TestClient for an app on `own_db` (no Redis)."""
    from balsam.server.main import create_app

    monkeypatch.setenv("BALSAM_DATABASE_URL", own_db[1])
    monkeypatch.setenv("BALSAM_AUTH_SECRET_KEY", TEST_SECRET)
    monkeypatch.setenv("BALSAM_LOG_LEVEL", "WARNING")
    monkeypatch.setenv("BALSAM_AUTH_ALLOW_REGISTRATION", "true")
    monkeypatch.delenv("BALSAM_REDIS_PARAMS", raising=False)
    reset_caches()
    yield TestClient(create_app())
    reset_caches()


def _login(api: TestClient, name: str) -> dict[str, str]:
    token = api.post("/auth/password/login", data={"username": name, "password": f"pw-{name}"})
    assert token.status_code == 200, token.text
    return {"Authorization": f"Bearer {token.json()['access_token']}"}


def _populate(api: TestClient, url: str) -> None:
    for name in ("alice", "bob"):
        assert api.post("/auth/password/register", json={"username": name, "password": f"pw-{name}"}).status_code == 201
        auth = _login(api, name)
        for i in range(3):
            site = api.post(
                "/sites/",
                headers=auth,
                json={
                    "name": f"{name}-site-{i}",
                    "path": f"/projects/{name}/ümlaut 'quoted' {i}",
                    "transfer_locations": {"laptop": f"globus://{i}"},
                    "allowed_projects": ["datascience", name],
                },
            )
            assert site.status_code == 201, site.text
            app = api.post(
                "/apps/",
                headers=auth,
                json={
                    "site_id": site.json()["id"],
                    "name": f"DemoApp{i}",
                    "serialized_class": "x" * 100,
                    "source_code": "print('hi')\n",
                    "parameters": {"n": {"required": True, "default": None}},
                },
            )
            assert app.status_code == 201, app.text
        # A deleted row leaves a gap in the ids, which the restored sequences must reproduce.
        assert api.delete(f"/sites/{site.json()['id']}", headers=auth).status_code == 204
    engine = create_engine(url)
    with engine.begin() as conn:
        site_id = conn.execute(text("SELECT min(id) FROM sites")).scalar_one()
        conn.execute(
            text(
                "INSERT INTO batch_jobs (site_id, project, queue, num_nodes, wall_time_min, job_mode, filter_tags) "
                "VALUES (:site, 'datascience', 'debug', 4, 30, 'mpi', '{\"system\": \"H2O\"}')"
            ),
            {"site": site_id},
        )
    engine.dispose()


def _recreate_empty(pg: PgEndpoint, name: str) -> None:
    pg.drop_database(name)
    conn = pg.connect()
    try:
        with conn.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
    finally:
        conn.close()


def test_backup_wipe_restore_gives_identical_tables(
    pg: PgEndpoint, own_db: tuple[str, str], api: TestClient, tmp_path: Path
) -> None:
    name, url = own_db
    _populate(api, url)
    before = snapshot(url)
    assert len(before["table users"]) == 2 and len(before["table sites"]) == 4 and len(before["table apps"]) == 4
    assert before["table alembic_version"], "the schema revision is part of the backup"

    backups = tmp_path / "backups"
    env = {"BALSAM_DATABASE_URL": url}
    result = run_cli("backup", "--dir", str(backups), env=env)
    assert result.returncode == 0, result.stderr
    files = sorted(backups.iterdir())
    dumps = [p for p in files if BACKUP_NAME.match(p.name)]
    assert len(dumps) == 1 and result.stdout.strip() == str(dumps[0])
    assert [p.name for p in files if p not in dumps] == [".balsam-backup.lock"], "no temporary file is left behind"
    assert dumps[0].stat().st_mode & 0o007 == 0, "no world access"
    assert "backup written" in result.stderr

    # Wipe: the database is dropped and recreated empty.
    _recreate_empty(pg, name)
    assert snapshot(url) == {}

    refused = run_cli("restore", str(dumps[0]), env=env)
    assert refused.returncode == 2 and "--yes" in refused.stderr
    assert snapshot(url) == {}, "without --yes nothing is written"

    restored = run_cli("restore", str(dumps[0]), "--yes", env=env)
    assert restored.returncode == 0, restored.stderr
    assert snapshot(url) == before

    # The restored database serves: same password hashes, and the sequences continue past the old ids.
    reset_caches()
    from balsam.server.main import create_app

    fresh = TestClient(create_app())
    auth = _login(fresh, "alice")
    new_site = fresh.post("/sites/", headers=auth, json={"name": "after-restore", "path": "/p/after"})
    assert new_site.status_code == 201, new_site.text
    assert new_site.json()["id"] > max(int(row.strip("()").split(",")[0]) for row in before["table sites"])


def test_restore_refuses_non_empty_target_and_can_use_a_named_or_cleaned_database(
    pg: PgEndpoint, own_db: tuple[str, str], api: TestClient, tmp_path: Path
) -> None:
    name, url = own_db
    _populate(api, url)
    before = snapshot(url)
    env = {"BALSAM_DATABASE_URL": url}
    assert run_cli("backup", "--dir", str(tmp_path), env=env).returncode == 0
    (dump,) = list_backups(tmp_path)

    refused = run_cli("restore", str(dump), "--yes", env=env)
    assert refused.returncode == 2 and "not empty" in refused.stderr and "--clean" in refused.stderr

    other, missing = f"{name}_copy", f"{name}_missing"
    try:
        into_new = run_cli("restore", str(dump), "--yes", "--database", other, env=env)
        assert into_new.returncode == 0, into_new.stderr
        assert snapshot(pg.url(other)) == before
        # The configured database does not exist yet (a new host): it is created.
        into_missing = run_cli("restore", str(dump), "--yes", env={"BALSAM_DATABASE_URL": pg.url(missing)})
        assert into_missing.returncode == 0, into_missing.stderr
        assert snapshot(pg.url(missing)) == before
    finally:
        pg.drop_database(other)
        pg.drop_database(missing)

    # --clean over a database that changed since the backup brings it back to the backup's contents.
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM apps"))
        conn.execute(text("UPDATE users SET username = 'renamed' WHERE username = 'bob'"))
    engine.dispose()
    assert snapshot(url) != before
    cleaned = run_cli("restore", str(dump), "--yes", "--clean", env=env)
    assert cleaned.returncode == 0, cleaned.stderr
    assert snapshot(url) == before


def _touch_backup(directory: Path, when: datetime, seq: int = 0) -> Path:
    suffix = f"-{seq}" if seq else ""
    path = directory / f"balsam-{when.strftime('%Y%m%dT%H%M%SZ')}{suffix}.dump"
    path.write_bytes(b"not a real dump; retention only reads names")
    return path


def test_retention_by_count_and_age_only_touches_its_own_files(tmp_path: Path) -> None:
    now = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    days = [_touch_backup(tmp_path, now - timedelta(days=d)) for d in range(10)]  # days[0] is the newest
    same_second = _touch_backup(tmp_path, now - timedelta(days=9), seq=1)
    foreign = ["notes.txt", "balsam-latest.dump", "other-20200101T000000Z.dump", "balsam-20200101T000000Z.dump.gz"]
    for other in foreign:
        (tmp_path / other).write_text("keep me")
    (tmp_path / "balsam-20190101T000000Z.dump").mkdir()  # a directory with a matching name is not a backup

    assert list_backups(tmp_path)[:2] == days[:2]
    assert list_backups(tmp_path)[-2:] == [same_second, days[9]]

    deleted = apply_retention(tmp_path, max_age_days=6.5, now=now)
    assert sorted(deleted) == sorted([*days[7:], same_second])
    assert list_backups(tmp_path) == days[:7]

    deleted = apply_retention(tmp_path, keep=3, now=now)
    assert sorted(deleted) == sorted(days[3:7])
    assert list_backups(tmp_path) == days[:3]

    # Both limits: a backup goes if it breaks either; the newest stays even when it is itself too old.
    deleted = apply_retention(tmp_path, keep=2, max_age_days=0.5, now=now + timedelta(days=30))
    assert sorted(deleted) == sorted(days[1:3])
    assert list_backups(tmp_path) == days[:1]

    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == sorted([*foreign, days[0].name])
    with pytest.raises(BackupError):
        apply_retention(tmp_path, keep=0)


def test_backup_cli_applies_retention(own_db: tuple[str, str], tmp_path: Path) -> None:
    _, url = own_db
    old = [_touch_backup(tmp_path, datetime(2020, 1, d, tzinfo=UTC)) for d in (1, 2, 3)]
    result = run_cli("backup", "--dir", str(tmp_path), "--keep", "2", env={"BALSAM_DATABASE_URL": url})
    assert result.returncode == 0, result.stderr
    newest = Path(result.stdout.strip())
    assert list_backups(tmp_path) == [newest, old[2]]
    assert "deleted old backup" in result.stderr

    by_env = run_cli(
        "backup",
        env={"BALSAM_DATABASE_URL": url, "BALSAM_BACKUP_DIR": str(tmp_path), "BALSAM_BACKUP_MAX_AGE_DAYS": "1"},
    )
    assert by_env.returncode == 0, by_env.stderr
    assert list_backups(tmp_path) == [Path(by_env.stdout.strip()), newest]


def test_backup_failures_exit_non_zero_and_leave_nothing(pg: PgEndpoint, tmp_path: Path) -> None:
    missing_db = run_cli("backup", "--dir", str(tmp_path / "a"), env={"BALSAM_DATABASE_URL": pg.url("no_such_db")})
    assert missing_db.returncode == 1 and "backup failed" in missing_db.stderr
    assert not list(tmp_path.glob("a/balsam-*"))

    a_file = tmp_path / "file"
    a_file.write_text("")
    not_a_dir = run_cli("backup", "--dir", str(a_file), env={"BALSAM_DATABASE_URL": pg.url("postgres")})
    assert not_a_dir.returncode == 1 and "backup failed" in not_a_dir.stderr

    no_dir = run_cli("backup", env={"BALSAM_DATABASE_URL": pg.url("postgres")})
    assert no_dir.returncode == 2 and "BALSAM_BACKUP_DIR" in no_dir.stderr

    garbage = tmp_path / "garbage.dump"
    garbage.write_bytes(b"PGDMP but not really")
    bad_restore = run_cli(
        "restore", str(garbage), "--yes", "--database", "never_created", env={"BALSAM_DATABASE_URL": pg.url("postgres")}
    )
    assert bad_restore.returncode == 1 and "restore failed" in bad_restore.stderr
    conn = pg.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = 'never_created'")
            assert cur.fetchone() is None, "an unreadable dump is rejected before anything is created"
    finally:
        conn.close()


def test_pg_tool_choice_matches_the_server(pg: PgEndpoint) -> None:
    major = server_major_version(pg.url("postgres"))
    tool = find_pg_tool("pg_dump", major)
    assert tool.major >= major
    with pytest.raises(BackupError, match="PostgreSQL 999 or newer"):
        find_pg_tool("pg_dump", 999)


def test_database_url_becomes_libpq_arguments_without_the_password_in_argv() -> None:
    conninfo, env = libpq_args("postgresql+psycopg2://balsam:s3cr%27et@db.example:6543/balsam?sslmode=require")
    assert conninfo == "dbname='balsam' host='db.example' port='6543' sslmode='require' user='balsam'"
    assert env == {"PGPASSWORD": "s3cr'et"}
    conninfo, env = libpq_args("postgresql://postgres@/balsam?host=/run/my dir&port=5433")
    assert conninfo == "dbname='balsam' host='/run/my dir' port='5433' user='postgres'"
    assert env == {}


def test_backup_cleans_interrupted_runs_and_refuses_to_run_twice(own_db: tuple[str, str], tmp_path: Path) -> None:
    import fcntl

    _, url = own_db
    env = {"BALSAM_DATABASE_URL": url}
    leftover = tmp_path / ".balsam-partial-balsam-20200101T000000Z.dump"
    leftover.write_bytes(b"half a dump from a killed run")
    result = run_cli("backup", "--dir", str(tmp_path), env=env)
    assert result.returncode == 0, result.stderr
    assert not leftover.exists() and "interrupted backup" in result.stderr

    with open(tmp_path / ".balsam-backup.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # another backup holds the directory
        busy = run_cli("backup", "--dir", str(tmp_path), env=env)
    assert busy.returncode == 1 and "another backup is running" in busy.stderr
    assert len(list_backups(tmp_path)) == 1
