"""Run a write transaction, re-running it when that is safe: a deadlock victim, or a dead connection.

Job writers lock rows in id order, so two bulk updates cannot deadlock each other. Child release is the
exception: it locks children *after* the jobs of the request, and in an unlucky DAG two requests can each
hold a job the other's release needs. PostgreSQL then aborts one of them (SQLSTATE 40P01); since the whole
request is one transaction that rolled back completely, running it again is safe.

The same holds when the connection dies (the database restarted) before COMMIT was sent: the server rolled
the transaction back, so it runs again on a new connection. A connection lost *during* COMMIT leaves the
outcome unknown; that error is not retried and reaches the client as a 503, which it retries.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

logger = logging.getLogger(__name__)
T = TypeVar("T")
_RETRYABLE = {"40P01", "40001"}  # deadlock_detected, serialization_failure
ATTEMPTS = 3


def run_write(db: Session, work: Callable[[], T]) -> T:
    """`with db.begin(): return work()`, re-run up to ATTEMPTS times on a deadlock, a serialization failure,
    or a connection that died before the commit."""
    for attempt in range(1, ATTEMPTS + 1):
        committing = False
        try:
            with db.begin():
                result = work()
                committing = True
            return result
        except DBAPIError as exc:
            code = getattr(exc.orig, "pgcode", None)
            lost = exc.connection_invalidated and not committing
            if (code not in _RETRYABLE and not lost) or attempt == ATTEMPTS:
                raise
            reason = "connection lost" if lost else code
            logger.info("Transaction aborted (%s), retrying (attempt %d)", reason, attempt + 1)
    raise AssertionError("unreachable")
