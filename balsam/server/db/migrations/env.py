"""Alembic environment: runs online against the connection handed over by balsam.server.db.migrate."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from balsam.server.db.tables import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        # Plain `alembic` CLI use during development: build a connection from the settings.
        from balsam.server.conf import get_settings

        engine = create_engine(get_settings().sqlalchemy_url)
        with engine.connect() as conn:
            context.configure(connection=conn, target_metadata=target_metadata, compare_type=True)
            with context.begin_transaction():
                context.run_migrations()
        return
    context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("Offline (SQL script) migrations are not supported; run `balsam server migrate`.")
run_migrations_online()
