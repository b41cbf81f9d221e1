"""Password login, registration and `me` (spec §1.2)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Request, status

from balsam.server.api.deps import DbDep, SettingsDep, TokenUserDep
from balsam.server.api.errors import BadRequest
from balsam.server.auth import password_login
from balsam.server.auth.throttle import LoginThrottle
from balsam.server.auth.tokens import create_token
from balsam.server.crud import users
from balsam.server.schemas.auth import TokenOut, UserCreate, UserOut

router = APIRouter(prefix="/auth/password", tags=["auth"])


_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def get_login_throttle(request: Request) -> LoginThrottle:
    throttle: LoginThrottle = request.app.state.login_throttle  # built with the app (balsam.server.main)
    return throttle


@router.post(
    "/login",
    response_model=TokenOut,
    responses={401: {"description": "Wrong credentials, or too many recent failures (then with Retry-After)"}},
)
def login(
    request: Request,
    db: DbDep,
    settings: SettingsDep,
    throttle: Annotated[LoginThrottle, Depends(get_login_throttle)],
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
    grant_type: Annotated[str | None, Form(pattern="^password$")] = None,
    scope: Annotated[str, Form()] = "",
) -> TokenOut:
    # The client address as the proxy reported it (gunicorn's `forwarded_allow_ips` says whom to believe).
    outcome = password_login.attempt(db, throttle, username, password, request.client.host if request.client else None)
    if outcome.retry_after is not None:
        # Refused before any lookup or hashing; 401, never 429, on this path (balsam.server.auth.throttle).
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            f"Too many failed logins; password login is refused for {outcome.retry_after} s",
            headers={**_CHALLENGE, "Retry-After": str(outcome.retry_after)},
        )
    user_id = outcome.user_id
    if user_id is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "Unauthorized", headers=_CHALLENGE)
    token, expiration = create_token(settings, user_id, username)
    return TokenOut(access_token=token, expiration=expiration)


REGISTRATION_CLOSED = (
    "Registration is closed on this server: ask its administrator for an account (balsam server user add)"
)


def registration_open(settings: SettingsDep) -> None:
    """403 when registration is off, before any password hashing: the published client re-sends a refused
    registration in a tight loop (spec §11), so each refusal must cost next to nothing."""
    if not settings.auth.allow_registration:
        raise HTTPException(status.HTTP_403_FORBIDDEN, REGISTRATION_CLOSED)


@router.post(
    "/register",
    response_model=UserOut,
    status_code=status.HTTP_201_CREATED,
    dependencies=[Depends(registration_open)],
    responses={403: {"description": "Registration is off (`BALSAM_AUTH_ALLOW_REGISTRATION`)"}},
)
def register(body: UserCreate, db: DbDep) -> UserOut:
    with db.begin():
        user = users.create(db, body.username, body.password)
        if user is None:
            raise BadRequest("Username already taken")
        return UserOut.model_validate(user)


@router.get("/me", response_model=UserOut)
def me(user: TokenUserDep) -> UserOut:
    return UserOut(id=user.id, username=user.username)
