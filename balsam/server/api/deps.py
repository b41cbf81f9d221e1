"""FastAPI dependencies, written as `Annotated` aliases: the settings, a DB session, the current user."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Query, Request, status
from fastapi.exceptions import RequestValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.requests import HTTPConnection

from balsam.server.auth.tokens import InvalidToken, TokenUser, decode_token
from balsam.server.conf import Settings, get_settings
from balsam.server.db.engine import get_sessionmaker
from balsam.server.db.tables import User
from balsam.server.pubsub import Publisher, get_publisher
from balsam.server.schemas.common import INT64_MAX, MAX_PAGE_SIZE, Paging

SettingsDep = Annotated[Settings, Depends(get_settings)]


def get_db() -> Iterator[Session]:
    """One session per request. Writes open their own explicit transaction (`with db.begin():`)."""
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


def get_token_user(request: Request, settings: SettingsDep) -> TokenUser:
    """The user named by a valid bearer token, without a database lookup."""
    try:
        return decode_token(settings, _bearer_token(request))
    except InvalidToken:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "Could not validate credentials", headers=_CHALLENGE
        ) from None


TokenUserDep = Annotated[TokenUser, Depends(get_token_user)]


def get_current_user(token_user: TokenUserDep, db: DbDep) -> TokenUser:
    """A token user that still exists: a deleted account's unexpired token stops working at once."""
    exists = db.execute(select(User.id).where(User.id == token_user.id)).first()
    db.rollback()  # end the read-only implicit transaction; handlers open their own
    if exists is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "Could not validate credentials", headers=_CHALLENGE)
    return token_user


CurrentUser = Annotated[TokenUser, Depends(get_current_user)]


def get_paging(
    limit: Annotated[int, Query(ge=-INT64_MAX, le=MAX_PAGE_SIZE)] = MAX_PAGE_SIZE,
    offset: Annotated[int, Query(ge=0, le=INT64_MAX)] = 0,
) -> Paging:
    # A negative limit is read as 0 (the count alone), which is what upstream answers on most list routes;
    # a 422 would be a 4xx where upstream gives 200 (spec §14.13).
    return Paging(limit=max(limit, 0), offset=offset)


PagingDep = Annotated[Paging, Depends(get_paging)]
PublisherDep = Annotated[Publisher, Depends(get_publisher)]


def reject_nul_characters(request: HTTPConnection) -> None:
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
