"""Access tokens: HS256 JWTs with `sub` (user id as a string, per RFC 7519), `username`, `iat` and `exp`."""

from __future__ import annotations

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
    try:
        claims = jwt.decode(
            token,
            settings.secret_key(),
            algorithms=[settings.auth.algorithm],
            options={"require": ["sub", "exp"]},
        )
        return TokenUser(id=int(claims["sub"]), username=str(claims.get("username", "")))
    except (jwt.PyJWTError, ValueError, TypeError) as exc:
        raise InvalidToken(str(exc)) from exc
