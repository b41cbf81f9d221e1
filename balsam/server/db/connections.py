"""Pooled connections: autocommit reads, explicit write transactions, and surviving a database restart
without a ping round trip on every checkout.

- **Autocommit.** psycopg2 wraps every statement in a transaction unless told otherwise, so a read costs
  BEGIN, the query and ROLLBACK: three round trips. Pooled connections sit in psycopg2's autocommit mode
  instead (one round trip per read); `begin_write` switches one to a transaction (psycopg2 then sends
  `BEGIN READ WRITE` with its first statement), and it is switched back when it returns to the pool. Both
  switches are attributes of the psycopg2 connection and send nothing to the server. (SQLAlchemy's own
  `isolation_level` switch goes through psycopg2's `set_isolation_level`, which sends `SET` commands.)

- **Checkout (pessimistic, free).** A pooled connection is idle: PostgreSQL has nothing to say to it. When the
  server shuts down or restarts it sends idle backends a FATAL message and closes them, so the socket of a
  dead pooled connection is readable. `poll()` on it (a system call, no round trip) finds that; the pool then
  discards the connection and opens a new one (`DisconnectionError`, SQLAlchemy's documented checkout hook).
  A false alarm (an unsolicited notice) costs one reconnect, never an error.
- **Connect (waits out a restart).** While the server is down, restarting or shutting down, opening a
  connection is retried with a short back-off for up to `wait_seconds`, so requests arriving during a restart
  wait for it instead of failing. Anything else (a wrong password, a missing database) fails at once. Through
  PgBouncer a new connection is proven with one `SELECT 1` first (see `install`).
- **During a statement (optimistic).** A connection that dies mid-statement raises an error that SQLAlchemy
  recognises as a disconnect: it invalidates the whole pool, and the caller decides whether re-running is safe
  (`balsam.server.db.session.BalsamSession` re-runs an autocommit read; `crud.transactions.run_write` re-runs a
  write transaction that never reached COMMIT).
"""

from __future__ import annotations

import logging
import select
import time
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.engine.interfaces import Dialect
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

logger = logging.getLogger(__name__)

# libpq's messages while the server cannot accept connections yet (or any more); everything else is final.
_TRANSIENT_CONNECT_ERRORS = (
    "the database system is starting up",
    "the database system is shutting down",
    "the database system is in recovery mode",
    "the database system is not yet accepting connections",
    "Connection refused",
    "No such file or directory",  # the unix socket is gone while the server is down
    "server closed the connection unexpectedly",
    "terminating connection",
    "pgbouncer cannot connect to server",  # PgBouncer while its server_login_retry pause after a failed connect
)
_TRANSACTION_IDLE = 0  # psycopg2.extensions.TRANSACTION_STATUS_IDLE
_FIRST_DELAY = 0.05
_MAX_DELAY = 0.5


def connection_is_stale(dbapi_connection: Any) -> bool:
    """True when an idle psycopg2 connection is closed or its server has already spoken (FATAL, EOF)."""
    if dbapi_connection.closed:
        return True
    poller = select.poll()
    poller.register(dbapi_connection.fileno(), select.POLLIN | select.POLLPRI)
    return bool(poller.poll(0))


def is_transient_connect_error(exc: BaseException) -> bool:
    message = str(exc)
    return any(fragment in message for fragment in _TRANSIENT_CONNECT_ERRORS)


def begin_write(dbapi_connection: Any) -> None:
    """Make the next statement on this idle connection open a READ WRITE transaction (no round trip now)."""
    dbapi_connection.autocommit = False
    dbapi_connection.readonly = False  # BEGIN READ WRITE: overrides default_transaction_read_only


def _back_to_autocommit(dbapi_connection: Any) -> None:
    if dbapi_connection.autocommit:
        return
    if dbapi_connection.info.transaction_status != _TRANSACTION_IDLE:
        dbapi_connection.rollback()  # the pool's reset already did this; be safe rather than raise
    dbapi_connection.readonly = None
    dbapi_connection.autocommit = True


def _connect(dialect: Dialect, cargs: Any, cparams: Any, probe: bool) -> Any:
    connection = dialect.connect(*cargs, **cparams)
    if probe:
        try:
            connection.autocommit = True  # the "connect" listener sets it too; no transaction is left open
            cursor = connection.cursor()
            cursor.execute("SELECT 1")
            cursor.close()
        except BaseException:
            connection.close()
            raise
    return connection


def install(engine: Engine, *, wait_seconds: float, probe_on_connect: bool = False) -> None:
    """Attach autocommit, the checkout check and the waiting connect to `engine` (one per worker process).

    `probe_on_connect` (PgBouncer mode): PgBouncer accepts a client's login without asking PostgreSQL, and
    while it cannot reach PostgreSQL (a restart or failover, then its `server_login_retry` pause) it closes a
    client at its first statement instead. One `SELECT 1` on each new connection brings that failure into
    the waiting connect, so that requests wait for the database there instead of failing.
    """

    @event.listens_for(engine, "connect")
    def _autocommit(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        dbapi_connection.autocommit = True

    @event.listens_for(engine, "checkin")
    def _restore(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        if dbapi_connection is not None and not dbapi_connection.closed:
            _back_to_autocommit(dbapi_connection)

    @event.listens_for(engine, "checkout")
    def _check_alive(dbapi_connection: Any, record: ConnectionPoolEntry, proxy: PoolProxiedConnection) -> None:
        if connection_is_stale(dbapi_connection):
            logger.info("Discarding a pooled database connection that the server closed")
            raise DisconnectionError("pooled connection was closed by the server")

    @event.listens_for(engine, "do_connect")
    def _connect_waiting(dialect: Dialect, record: ConnectionPoolEntry, cargs: Any, cparams: Any) -> Any:
        deadline = time.monotonic() + wait_seconds
        delay = _FIRST_DELAY
        while True:
            try:
                return _connect(dialect, cargs, cparams, probe_on_connect)
            except dialect.loaded_dbapi.OperationalError as exc:
                if not is_transient_connect_error(exc) or time.monotonic() + delay > deadline:
                    raise
                logger.info("Database not accepting connections yet, retrying in %.2fs: %s", delay, exc)
            time.sleep(delay)
            delay = min(delay * 2, _MAX_DELAY)
