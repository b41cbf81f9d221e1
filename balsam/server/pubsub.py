"""Publishing user events to Redis, after the database commit (spec §10).

With no Redis configured the publisher is a no-op. When Redis is unreachable the API keeps working: the
first failure logs a warning, later ones stay quiet until a publish succeeds again. A failed publish is not
retried (redis-py 7 would otherwise back off for seconds inside the request), and for `SUSPEND_SECONDS`
after a failure publishes are skipped without touching the network, so an outage costs requests nothing.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import datetime
from functools import lru_cache
from typing import Any
from uuid import UUID

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from balsam.server.conf import get_settings
from balsam.server.metrics.counters import EVENTS_PUBLISHED, PUBLISH_FAILURES

logger = logging.getLogger(__name__)

SUSPEND_SECONDS = 5.0


def user_channel(user_id: int) -> str:
    return f"user-{user_id}"


def _default(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    return str(value)


def encode_message(action: str, type_: str, data: Any) -> str:
    return json.dumps({"action": action, "type": type_, "data": data}, default=_default)


class Publisher:
    def __init__(self, params: dict[str, Any] | None) -> None:
        self._client = (
            redis.Redis(socket_timeout=2.0, socket_connect_timeout=2.0, retry=Retry(NoBackoff(), 0), **params)
            if params is not None
            else None
        )
        self._healthy = True
        self._suspended_until = 0.0
        self._lock = threading.Lock()
        self.skipped = 0  # publishes dropped while suspended (observable for operators' debugging and tests)

    @property
    def enabled(self) -> bool:
        return self._client is not None

    def publish(self, user_id: int, action: str, type_: str, data: Any) -> None:
        if self._client is None:
            return
        if time.monotonic() < self._suspended_until:
            with self._lock:
                self.skipped += 1
            PUBLISH_FAILURES.labels("suspended").inc()
            return
        try:
            self._client.publish(user_channel(user_id), encode_message(action, type_, data))
            EVENTS_PUBLISHED.inc()
        except (redis.RedisError, OSError) as exc:
            PUBLISH_FAILURES.labels("error").inc()
            with self._lock:
                self._suspended_until = time.monotonic() + SUSPEND_SECONDS
                if self._healthy:
                    logger.warning("Redis publish failed; events are not delivered until it is back: %s", exc)
                self._healthy = False
            return
        if not self._healthy:
            with self._lock:
                self._healthy = True
            logger.info("Redis publish works again")

    def ping(self) -> bool:
        if self._client is None:
            return False
        try:
            return bool(self._client.ping())
        except (redis.RedisError, OSError):
            return False


@lru_cache(maxsize=1)
def get_publisher() -> Publisher:
    return Publisher(get_settings().redis_params)


def publish_events(publisher: Publisher, user_id: int, events: list[dict[str, Any]]) -> None:
    """Job state-change events (LogEventOut dicts) of one request, as one message after the commit."""
    if events:
        publisher.publish(user_id, "bulk-create", "event", events)
