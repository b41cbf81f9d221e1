"""Password hashing with Argon2id (argon2-cffi).

The published client re-sends a failed login immediately, in a loop (spec §11). A short-lived cache of
recent failures keyed by a fast digest makes each repeat cost a SHA-256 instead of an Argon2 run.
"""

from __future__ import annotations

import hashlib
import threading
import time

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
_FAILURE_TTL_SECONDS = 30.0
_MAX_CACHED_FAILURES = 10_000
_failures: dict[bytes, float] = {}
_lock = threading.Lock()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def _failure_key(hashed: str, password: str) -> bytes:
    return hashlib.sha256(hashed.encode() + b"\x00" + password.encode()).digest()


def verify_password(hashed: str, password: str) -> bool:
    key = _failure_key(hashed, password)
    now = time.monotonic()
    with _lock:
        seen = _failures.get(key)
        if seen is not None and now - seen < _FAILURE_TTL_SECONDS:
            return False
    try:
        return _hasher.verify(hashed, password)
    except (VerificationError, InvalidHashError):
        with _lock:
            if len(_failures) >= _MAX_CACHED_FAILURES:
                _failures.clear()
            _failures[key] = now
        return False
