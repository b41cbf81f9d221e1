"""Access tokens: HS256 JWTs with `sub` (user id as a string, per RFC 7519), `username`, `iat` and `exp`.

A token minted for one narrow purpose carries a `purpose` claim: the dashboard's sign-in cookie (PURPOSE_DASHBOARD)
and the short-lived credential its pages open the live-update websocket with (PURPOSE_SUBSCRIBE). `decode_token`
accepts only the purposes its caller names, and by default only API tokens (no `purpose`), so neither of those can
be replayed as a bearer token against the REST API.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import jwt

from balsam.server.conf import Settings

PURPOSE_DASHBOARD = "dashboard"
PURPOSE_SUBSCRIBE = "subscribe"
API_ONLY: tuple[str | None, ...] = (None,)


@dataclass(frozen=True)
class TokenUser:
    id: int
    username: str
    # Naive UTC, when decoded from a token (the dashboard's sign-in cookie lives no longer than its token).
    expires: datetime | None = field(default=None, compare=False)


class InvalidToken(Exception):
    pass


def create_token(
    settings: Settings,
    user_id: int,
    username: str,
    *,
    purpose: str | None = None,
    ttl: float | None = None,
    not_after: datetime | None = None,
) -> tuple[str, datetime]:
    """Return the token and its naive-UTC expiry (the published client compares it with utcnow()).

    `ttl` (seconds) defaults to the token lifetime setting; `not_after` (naive UTC) caps the expiry.
    """
    now = datetime.now(UTC)
    expires = now + timedelta(seconds=settings.auth.token_ttl if ttl is None else ttl)
    if not_after is not None:
        expires = min(expires, not_after.replace(tzinfo=UTC))
    claims: dict[str, object] = {"sub": str(user_id), "username": username, "iat": now, "exp": expires}
    if purpose is not None:
        claims["purpose"] = purpose
    token = jwt.encode(claims, settings.secret_key(), algorithm=settings.auth.algorithm)
    return token, expires.replace(tzinfo=None)


def decode_token(settings: Settings, token: str, *, accept: Collection[str | None] = API_ONLY) -> TokenUser:
    """The token's user; InvalidToken for a bad signature, an expired token, or a purpose not in `accept`."""
    try:
        claims = jwt.decode(
            token,
            settings.secret_key(),
            algorithms=[settings.auth.algorithm],
            options={"require": ["sub", "exp"]},
        )
        if claims.get("purpose") not in accept:
            raise InvalidToken(f"a token for {claims.get('purpose')!r} is not accepted here")
        expires = datetime.fromtimestamp(int(claims["exp"]), UTC).replace(tzinfo=None)
        return TokenUser(id=int(claims["sub"]), username=str(claims.get("username", "")), expires=expires)
    except (jwt.PyJWTError, ValueError, TypeError) as exc:
        raise InvalidToken(str(exc)) from exc
