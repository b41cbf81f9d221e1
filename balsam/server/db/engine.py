"""The process-wide SQLAlchemy engine and session factory.

Created lazily so that each gunicorn worker builds its own connection pool after the fork.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session, sessionmaker

from balsam.server.conf import Settings, get_settings


def make_engine(settings: Settings) -> Engine:
    return create_engine(
        settings.sqlalchemy_url,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
        pool_pre_ping=True,
        # Every timestamp the service writes or compares is UTC.
        connect_args={"options": "-c timezone=UTC"},
    )


@lru_cache(maxsize=1)
def get_engine() -> Engine:
    return make_engine(get_settings())


@lru_cache(maxsize=1)
def get_sessionmaker() -> sessionmaker[Session]:
    return sessionmaker(bind=get_engine(), expire_on_commit=False, autoflush=False)


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
