"""The service's notion of "now": naive UTC, the form the schema stores and the API emits."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)
