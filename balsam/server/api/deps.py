"""FastAPI dependencies, written as `Annotated` aliases: the settings, a DB session, the current user.

Every dependency that does no blocking I/O is `async def`: FastAPI runs a plain `def` dependency in the
thread pool, and one thread hop per dependency costs more than the dependency itself. Only the route handler
(and a user lookup that misses the cache) runs in a thread.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, HTTPException, Query, Request, status
from fastapi.exceptions import RequestValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection

from balsam.server.auth.tokens import InvalidToken, TokenUser, decode_token
from balsam.server.conf import Settings
from balsam.server.db.engine import get_sessionmaker
from balsam.server.db.tables import User
from balsam.server.pubsub import Publisher, get_publisher
from balsam.server.schemas.common import INT64_MAX, MAX_PAGE_SIZE, Paging


async def app_settings(connection: HTTPConnection) -> Settings:
    """The settings the app was built with (`create_app` stores them; tests build apps with their own).

    Read from the app rather than injected with `dependency_overrides`: with any override registered, FastAPI
    re-inspects every sub-dependency's signature on every request, a measurable share of a small request.
    """
    settings: Settings = connection.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(app_settings)]


async def get_db() -> AsyncIterator[Session]:
    """One session per request; it connects on first use. Reads are autocommit statements, writes open their
    own explicit transaction (`with db.begin():`, balsam.server.db.session). Closing it does no I/O."""
    with get_sessionmaker()() as session:
        yield session


DbDep = Annotated[Session, Depends(get_db)]

_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def _bearer_token(request: Request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "Not authenticated", headers=_CHALLENGE)
    return token.strip()


async def get_token_user(request: Request, settings: SettingsDep) -> TokenUser:
    """The user named by a valid bearer token, without a database lookup."""
    try:
        return decode_token(settings, _bearer_token(request))
    except InvalidToken:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "Could not validate credentials", headers=_CHALLENGE
        ) from None


TokenUserDep = Annotated[TokenUser, Depends(get_token_user)]


class UserCheckCache:
    """When each worker last saw a user's account exist (monotonic clock)."""

    MAX_ENTRIES = 10_000

    def __init__(self) -> None:
        self._seen: dict[int, float] = {}

    def fresh(self, user_id: int, max_age: float) -> bool:
        seen = self._seen.get(user_id)
        return seen is not None and time.monotonic() - seen < max_age

    def remember(self, user_id: int) -> None:
        if len(self._seen) >= self.MAX_ENTRIES:
            self._seen.clear()  # crude but bounded; an entry only saves one lookup
        self._seen[user_id] = time.monotonic()

    def clear(self) -> None:
        self._seen.clear()


user_checks = UserCheckCache()


def user_exists(db: Session, user_id: int) -> bool:
    exists = db.execute(select(User.id).where(User.id == user_id)).first() is not None
    db.rollback()  # releases the connection; the read was an autocommit statement, so this costs nothing
    return exists


async def get_current_user(token_user: TokenUserDep, db: DbDep, settings: SettingsDep) -> TokenUser:
    """A token user that still exists: a deleted account's unexpired token stops working within
    `BALSAM_AUTH_USER_CHECK_SECONDS` (each worker caches the positive answer that long)."""
    if not user_checks.fresh(token_user.id, settings.auth.user_check_seconds):
        if not await run_in_threadpool(user_exists, db, token_user.id):
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "Could not validate credentials", headers=_CHALLENGE)
        user_checks.remember(token_user.id)
    return token_user


CurrentUser = Annotated[TokenUser, Depends(get_current_user)]


async def get_paging(
    limit: Annotated[int, Query(ge=-INT64_MAX, le=MAX_PAGE_SIZE)] = MAX_PAGE_SIZE,
    offset: Annotated[int, Query(ge=0, le=INT64_MAX)] = 0,
) -> Paging:
    # A negative limit is read as 0 (the count alone), which is what upstream answers on most list routes;
    # a 422 would be a 4xx where upstream gives 200 (spec §14.13).
    return Paging(limit=max(limit, 0), offset=offset)


PagingDep = Annotated[Paging, Depends(get_paging)]


async def publisher() -> Publisher:
    return get_publisher()


PublisherDep = Annotated[Publisher, Depends(publisher)]


async def reject_nul_characters(request: HTTPConnection) -> None:
    """422 for a NUL character in any query or path parameter: PostgreSQL cannot store or compare it, and the
    driver would fail before the query runs (spec §14.2). Mounted on the whole app."""
    if request.scope["type"] != "http":
        return  # the websocket takes no parameters that reach SQL
    params = [("query", key, value) for key, value in request.query_params.multi_items()]
    params += [("path", key, str(value)) for key, value in request.path_params.items()]
    bad = [(where, key) for where, key, value in params if "\x00" in key or "\x00" in value]
    if bad:
        raise RequestValidationError(
            [
                {"loc": (where, key), "msg": "must not contain the NUL character (\\u0000)", "type": "value_error"}
                for where, key in bad
            ]
        )
