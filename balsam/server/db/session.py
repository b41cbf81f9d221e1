"""The ORM session of the service: reads are autocommit statements, `begin()` opens a real transaction.

The pool's connections are in psycopg2's autocommit mode with `default_transaction_read_only` on
(balsam.server.db.connections, engine.make_engine), so a statement outside `begin()` is one round trip, and a
write there fails loudly (SQLSTATE 25006) instead of committing statement by statement. `begin()` ends such a
read (which costs nothing) and switches its connection to a READ WRITE transaction before any SQL is sent;
psycopg2 sends BEGIN with the first statement and COMMIT at the end, and the pool puts the connection back in
autocommit when it is returned. Nothing here keeps state on the server between transactions, so it works
behind PgBouncer in transaction mode.

A read whose connection turns out to be dead (the database restarted) is run again once on a fresh connection:
it was an autocommit statement that changed nothing, so running it again is safe. Writes are re-run, when that
is safe, by `balsam.server.crud.transactions.run_write`.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import ClauseElement, CursorResult, Result, event
from sqlalchemy.dialects.postgresql import psycopg2 as psycopg2_dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction, SessionTransactionOrigin

from balsam.server.db import connections

logger = logging.getLogger(__name__)


class BalsamSession(Session):
    def begin(self, nested: bool = False) -> SessionTransaction:
        if not nested and in_read(self):
            self.rollback()  # an autocommit read: nothing to undo, no round trip
        transaction = super().begin(nested=nested)
        if not nested:
            connections.begin_write(self.connection().connection.dbapi_connection)
        return transaction


def in_read(session: Session) -> bool:
    """True outside `begin()`: no transaction yet, or only the one SQLAlchemy opened for autocommit reads."""
    transaction = session.get_transaction()
    return transaction is None or transaction.origin is SessionTransactionOrigin.AUTOBEGIN


@event.listens_for(BalsamSession, "do_orm_execute")
def _rerun_read_on_dead_connection(state: ORMExecuteState) -> Result[Any] | None:
    if not in_read(state.session):
        return None  # a write transaction: carry on as usual
    try:
        return state.invoke_statement()
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
        logger.info("Database connection lost during a read; running it again on a new connection")
    state.session.rollback()  # releases the dead connection; the pool has discarded it
    return state.invoke_statement()


def compile_read(statement: ClauseElement) -> str:
    """A statement compiled once to psycopg2's SQL text (`%(name)s` parameters), for `read_compiled`.

    For the hottest small reads: SQLAlchemy builds, caches and re-checks the cache key of a statement on
    every execution, which for the 23-key job JSON costs more than the query itself.
    """
    return str(statement.compile(dialect=psycopg2_dialect.dialect()))


def read_compiled(session: Session, sql: str, params: dict[str, Any]) -> CursorResult[Any]:
    """Run a `compile_read` statement as an autocommit read, once more on a fresh connection if the first
    one turned out dead (as `_rerun_read_on_dead_connection` does for ordinary statements)."""
    try:
        return session.connection().exec_driver_sql(sql, params)
    except DBAPIError as exc:
        if not exc.connection_invalidated or not in_read(session):
            raise
        logger.info("Database connection lost during a read; running it again on a new connection")
    session.rollback()
    return session.connection().exec_driver_sql(sql, params)
