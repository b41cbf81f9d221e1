"""The process-wide SQLAlchemy engine and session factory.

Created lazily so that each gunicorn worker builds its own connection pool after the fork. Connections sit in
the pool in autocommit mode with `default_transaction_read_only` on: a read is one round trip, and writes run in
the explicit transactions of `BalsamSession.begin()` (balsam.server.db.session). There is no ping on checkout:
balsam.server.db.connections finds connections the server has closed without one.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session, sessionmaker

from balsam.server.conf import Settings, get_settings
from balsam.server.db import connections
from balsam.server.db.session import BalsamSession

# Every timestamp the service writes or compares is UTC; statements outside a transaction may only read.
# PgBouncer refuses startup options, so BALSAM_DATABASE_PGBOUNCER drops both (the code needs neither to be
# correct: timestamps are naive UTC computed in Python, and writes only happen in `begin()`).
CONNECTION_OPTIONS = "-c timezone=UTC -c default_transaction_read_only=on"


def connect_args(settings: Settings) -> dict[str, str]:
    """libpq arguments of the API's connections: the startup options, unless PgBouncer sits in between."""
    return {} if settings.database_pgbouncer else {"options": CONNECTION_OPTIONS}


def admin_connect_args(settings: Settings) -> dict[str, str]:
    """libpq arguments of the admin commands' connections (`direct_sqlalchemy_url`): UTC, unless through PgBouncer."""
    return {} if settings.admin_reaches_pgbouncer() else {"options": "-c timezone=UTC"}


def make_engine(settings: Settings) -> Engine:
    engine = create_engine(
        settings.sqlalchemy_url,
        pool_size=settings.pool_size(),
        max_overflow=settings.database_max_overflow,
        pool_pre_ping=False,  # connections.install checks idle connections without a round trip
        connect_args=connect_args(settings),
    )
    connections.install(
        engine, wait_seconds=settings.database_reconnect_seconds, probe_on_connect=settings.database_pgbouncer
    )
    return engine


@lru_cache(maxsize=1)
def get_engine() -> Engine:
    return make_engine(get_settings())


@lru_cache(maxsize=1)
def get_sessionmaker() -> sessionmaker[Session]:
    return sessionmaker(bind=get_engine(), class_=BalsamSession, expire_on_commit=False, autoflush=False)


def reset_engine() -> None:
    """Drop the cached engine (tests, and after settings change)."""
    if get_engine.cache_info().currsize:
        get_engine().dispose()
    get_engine.cache_clear()
    get_sessionmaker.cache_clear()


@contextmanager
def transaction() -> Iterator[Session]:
    """A session whose work commits on success and rolls back on any exception."""
    with get_sessionmaker()() as session, session.begin():
        yield session
