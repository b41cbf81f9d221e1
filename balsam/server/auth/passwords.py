"""Password hashing with Argon2id (argon2-cffi).

The published client re-sends a failed login immediately, in a loop (spec §11). A short-lived memory of recent
failures keyed by a fast digest makes each repeat cost a SHA-256 instead of an Argon2 run.
"""

from __future__ import annotations

import hashlib

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from balsam.server.auth.recent import Recent

_hasher = PasswordHasher()
_FAILURE_TTL_SECONDS = 30.0
_failures = Recent(_FAILURE_TTL_SECONDS, max_size=10_000)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def _failure_key(hashed: str, password: str) -> bytes:
    return hashlib.sha256(hashed.encode() + b"\x00" + password.encode()).digest()


def verify_password(hashed: str, password: str) -> bool:
    key = _failure_key(hashed, password)
    if key in _failures:
        return False
    try:
        return _hasher.verify(hashed, password)
    except (VerificationError, InvalidHashError):
        _failures.add(key)
        return False
