"""Access tokens: HS256 JWTs with `sub` (user id as a string, per RFC 7519), `username`, `iat` and `exp`."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

from balsam.server.conf import Settings


@dataclass(frozen=True)
class TokenUser:
    id: int
    username: str


class InvalidToken(Exception):
    pass


def create_token(settings: Settings, user_id: int, username: str) -> tuple[str, datetime]:
    """Return the token and its naive-UTC expiry (the published client compares it with utcnow())."""
    now = datetime.now(UTC)
    expires = now + timedelta(seconds=settings.auth.token_ttl)
    claims = {"sub": str(user_id), "username": username, "iat": now, "exp": expires}
    token = jwt.encode(claims, settings.secret_key(), algorithm=settings.auth.algorithm)
    return token, expires.replace(tzinfo=None)


def decode_token(settings: Settings, token: str) -> TokenUser:
    """The user of a valid token; verified tokens are remembered until they expire (`VerifiedTokens`)."""
    key = (settings.secret_key(), settings.auth.algorithm, token)
    if (known := verified_tokens.get(key)) is not None:
        return known
    try:
        claims = jwt.decode(
            token,
            settings.secret_key(),
            algorithms=[settings.auth.algorithm],
            options={"require": ["sub", "exp"]},
        )
        user = TokenUser(id=int(claims["sub"]), username=str(claims.get("username", "")))
    except (jwt.PyJWTError, ValueError, TypeError) as exc:
        raise InvalidToken(str(exc)) from exc
    verified_tokens.put(key, user, float(claims["exp"]))
    return user


class VerifiedTokens:
    """Tokens whose signature this process has checked, with their expiry (Unix time).

    A client sends the same token with every request, and checking the HMAC signature is a noticeable part of
    a small request. The key includes the signing key and algorithm, so a new key verifies afresh; expiry is
    checked on every use. Bounded: when full, it starts over.
    """

    MAX_ENTRIES = 10_000

    def __init__(self) -> None:
        self._tokens: dict[tuple[str, str, str], tuple[TokenUser, float]] = {}

    def get(self, key: tuple[str, str, str]) -> TokenUser | None:
        entry = self._tokens.get(key)
        if entry is None:
            return None
        if time.time() >= entry[1]:
            self._tokens.pop(key, None)
            return None
        return entry[0]

    def put(self, key: tuple[str, str, str], user: TokenUser, expires: float) -> None:
        if len(self._tokens) >= self.MAX_ENTRIES:
            self._tokens.clear()
        self._tokens[key] = (user, expires)


verified_tokens = VerifiedTokens()
