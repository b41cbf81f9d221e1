"""Access tokens: HS256 JWTs with `sub` (user id as a string, per RFC 7519), `username`, `iat` and `exp`.

A token minted for one narrow purpose carries a `purpose` claim: the dashboard's sign-in cookie (PURPOSE_DASHBOARD)
and the short-lived credential its pages open the live-update websocket with (PURPOSE_SUBSCRIBE). `decode_token`
accepts only the purposes its caller names, and by default only API tokens (no `purpose`), so neither of those can
be replayed as a bearer token against the REST API.
"""

from __future__ import annotations

import time
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
    """The token's user; InvalidToken for a bad signature, an expired token, or a purpose not in `accept`.

    Verified tokens are remembered until they expire (`VerifiedTokens`), with their purpose, which is checked
    against `accept` on every use.
    """
    key = (settings.secret_key(), settings.auth.algorithm, token)
    if (known := verified_tokens.get(key)) is not None:
        user, purpose = known
        if purpose not in accept:
            raise InvalidToken(f"a token for {purpose!r} is not accepted here")
        return user
    try:
        claims = jwt.decode(
            token,
            settings.secret_key(),
            algorithms=[settings.auth.algorithm],
            options={"require": ["sub", "exp"]},
        )
        purpose = claims.get("purpose")
        expires = datetime.fromtimestamp(int(claims["exp"]), UTC).replace(tzinfo=None)
        user = TokenUser(id=int(claims["sub"]), username=str(claims.get("username", "")), expires=expires)
    except (jwt.PyJWTError, ValueError, TypeError) as exc:
        raise InvalidToken(str(exc)) from exc
    purpose = purpose if purpose is None else str(purpose)
    verified_tokens.put(key, (user, purpose), float(claims["exp"]))
    if purpose not in accept:
        raise InvalidToken(f"a token for {purpose!r} is not accepted here")
    return user


class VerifiedTokens:
    """Tokens whose signature this process has checked, with their user, purpose and expiry (Unix time).

    A client sends the same token with every request, and checking the HMAC signature is a noticeable part of
    a small request. The key includes the signing key and algorithm, so a new key verifies afresh; expiry is
    checked on every use. Bounded: when full, it starts over.
    """

    MAX_ENTRIES = 10_000

    def __init__(self) -> None:
        self._tokens: dict[tuple[str, str, str], tuple[tuple[TokenUser, str | None], float]] = {}

    def get(self, key: tuple[str, str, str]) -> tuple[TokenUser, str | None] | None:
        entry = self._tokens.get(key)
        if entry is None:
            return None
        if time.time() >= entry[1]:
            self._tokens.pop(key, None)
            return None
        return entry[0]

    def put(self, key: tuple[str, str, str], entry: tuple[TokenUser, str | None], expires: float) -> None:
        if len(self._tokens) >= self.MAX_ENTRIES:
            self._tokens.clear()
        self._tokens[key] = (entry, expires)


verified_tokens = VerifiedTokens()
