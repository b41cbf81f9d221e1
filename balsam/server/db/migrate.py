"""Programmatic Alembic upgrades, safe to run from several processes at once."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, text

logger = logging.getLogger(__name__)

# Any constant works; it only has to be the same in every process that migrates this database.
MIGRATION_LOCK_KEY = 0x6A15A3


def alembic_config() -> Config:
    ini = Path(__file__).with_name("alembic.ini")
    cfg = Config(str(ini))
    cfg.set_main_option("script_location", str(ini.parent / "migrations"))
    return cfg


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(url_or_engine: str | Engine, revision: str = "head") -> tuple[str | None, str | None]:
    """Upgrade to `revision`; returns (before, after). Idempotent.

    The whole upgrade is one transaction that first takes a transaction-level advisory lock: a concurrent
    caller waits for the commit, then finds the schema already at `revision` and does nothing. A
    transaction-level lock (not a session-level one) also holds through PgBouncer in transaction mode,
    which may hand each transaction of a client a different server connection.
    """
    engine = create_engine(url_or_engine) if isinstance(url_or_engine, str) else url_or_engine
    try:
        with engine.connect() as conn, conn.begin():
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            # Read after the lock: READ COMMITTED gives this statement the winner's committed revision.
            before = current_revision(conn)
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)  # joins this transaction (env.py: begin_transaction)
            after = current_revision(conn)
    finally:
        if isinstance(url_or_engine, str):
            engine.dispose()
    if before == after:
        logger.info("Database schema already at %s", after)
    else:
        logger.info("Database schema upgraded from %s to %s", before, after)
    return before, after
