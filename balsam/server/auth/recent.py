"""A small per-process memory of recent events, for the login paths that the published client hammers in a loop
(spec §11): each key is forgotten a fixed time after it was added, and the memory never grows past a bound."""

from __future__ import annotations

import threading
import time
from collections.abc import Hashable
from typing import Any


class Recent:
    """A thread-safe map of keys to values, each remembered for `ttl` seconds (or its own time), at most
    `max_size` keys. Used as a set when the values do not matter."""

    def __init__(self, ttl: float, max_size: int = 10_000) -> None:
        self.ttl = ttl
        self.max_size = max_size
        self._entries: dict[Hashable, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def add(self, key: Hashable, value: Any = None, ttl: float | None = None) -> None:
        forget_at = time.monotonic() + (self.ttl if ttl is None else ttl)
        with self._lock:
            if len(self._entries) >= self.max_size:
                now = time.monotonic()
                self._entries = {k: e for k, e in self._entries.items() if e[0] > now}
                if len(self._entries) >= self.max_size:
                    self._entries.clear()  # a flood of distinct keys: forget them rather than grow
            self._entries[key] = (forget_at, value)

    def get(self, key: Hashable) -> Any:
        """The value remembered for `key`, or None when it is not (or no longer) remembered."""
        with self._lock:
            entry = self._entries.get(key)
        if entry is None or entry[0] <= time.monotonic():
            return None
        return entry[1]

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            entry = self._entries.get(key)
        return entry is not None and entry[0] > time.monotonic()
