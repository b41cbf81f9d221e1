"""Set-up shared by the benchmarks: a private PostgreSQL (or BALSAM_DATABASE_URL), a migrated database, a
real gunicorn with the example config and the access log off, and a logged-in client with a site and app."""

from __future__ import annotations

import os
import platform
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from balsam.server.db.migrate import upgrade  # noqa: E402
from tests.serving import free_port, gunicorn  # noqa: E402


@contextmanager
def database(workdir: Path) -> Iterator[str]:
    url = os.environ.get("BALSAM_DATABASE_URL")
    if url:
        yield url
        return
    from balsam.server.embedded.postgres import PostgresServer

    server = PostgresServer(workdir / "pg", port=int(os.environ.get("BENCH_PG_PORT", "0")) or free_port())
    server.start()
    try:
        server.create_database("balsam_bench")
        yield server.url("balsam_bench")
    finally:
        server.stop(mode="fast")


@dataclass
class BenchServer:
    base_url: str
    database_url: str
    http: httpx.Client
    site: dict[str, Any]
    app: dict[str, Any]


def machine_line() -> str:
    return f"machine: {platform.node()} {platform.machine()} cpus={os.cpu_count()} python={platform.python_version()}"


@contextmanager
def bench_server(workers: int, extra_env: dict[str, str] | None = None) -> Iterator[BenchServer]:
    with tempfile.TemporaryDirectory(prefix="balsam-bench-") as tmp, database(Path(tmp)) as url:
        upgrade(url)
        env = {
            "BALSAM_DATABASE_URL": url,
            "BALSAM_AUTH_SECRET_KEY": uuid.uuid4().hex,
            "BALSAM_LOG_LEVEL": "WARNING",
            "GUNICORN_KEEPALIVE": "30",
            "GUNICORN_ACCESS_LOG": "off",
            **(extra_env or {}),
        }
        os.environ.pop("BALSAM_REDIS_PARAMS", None)
        with gunicorn(env, Path(tmp), workers=workers) as server:
            http = httpx.Client(base_url=server.base_url, timeout=300)
            user = f"bench-{uuid.uuid4().hex[:6]}"
            http.post("/auth/password/register", json={"username": user, "password": "pw"}).raise_for_status()
            token = http.post("/auth/password/login", data={"username": user, "password": "pw"}).json()
            http.headers["Authorization"] = f"Bearer {token['access_token']}"
            site = http.post("/sites/", json={"name": "bench", "path": "/bench"}).json()
            app = http.post(
                "/apps/", json={"site_id": site["id"], "name": "bench", "serialized_class": "c", "source_code": "s"}
            ).json()
            yield BenchServer(server.base_url, url, http, site, app)
