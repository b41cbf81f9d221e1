"""Helpers for the tests of one migration on a database with data in it: a fresh database at a given revision,
and a downgrade (balsam.server.db.migrate only upgrades)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from alembic import command
from sqlalchemy import Engine, create_engine

from balsam.server.db.migrate import alembic_config, upgrade
from tests.harness import PgEndpoint


@contextmanager
def database_at(pg: PgEndpoint, prefix: str, revision: str) -> Iterator[Engine]:
    """A new database (its name starts with `prefix`), migrated to `revision`; dropped afterwards."""
    name = pg.create_database(prefix)
    url = pg.url(name)
    upgrade(url, revision)
    engine = create_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()
        pg.drop_database(name)


def downgrade(engine: Engine, revision: str) -> None:
    with engine.connect() as conn:
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)
        conn.commit()
