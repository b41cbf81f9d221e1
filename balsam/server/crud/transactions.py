"""Run a write transaction, retrying it when PostgreSQL aborts it as a deadlock victim.

Job writers lock rows in id order, so two bulk updates cannot deadlock each other. Child release is the
exception: it locks children *after* the jobs of the request, and in an unlucky DAG two requests can each
hold a job the other's release needs. PostgreSQL then aborts one of them (SQLSTATE 40P01); since the whole
request is one transaction that rolled back completely, running it again is safe.
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
    """`with db.begin(): return work()`, re-run up to ATTEMPTS times on a deadlock or serialization failure."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            with db.begin():
                return work()
        except DBAPIError as exc:
            code = getattr(exc.orig, "pgcode", None)
            if code not in _RETRYABLE or attempt == ATTEMPTS:
                raise
            logger.info("Transaction aborted by PostgreSQL (%s), retrying (attempt %d)", code, attempt + 1)
    raise AssertionError("unreachable")
