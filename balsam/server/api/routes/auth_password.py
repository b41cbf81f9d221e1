"""Password login, registration and `me` (spec §1.2)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, status

from balsam.server.api.deps import DbDep, SettingsDep, TokenUserDep
from balsam.server.api.errors import BadRequest
from balsam.server.auth.passwords import verify_password
from balsam.server.auth.tokens import create_token
from balsam.server.crud import users
from balsam.server.schemas.auth import TokenOut, UserCreate, UserOut

router = APIRouter(prefix="/auth/password", tags=["auth"])


@router.post("/login", response_model=TokenOut)
def login(
    db: DbDep,
    settings: SettingsDep,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
    grant_type: Annotated[str | None, Form(pattern="^password$")] = None,
    scope: Annotated[str, Form()] = "",
) -> TokenOut:
    user = users.get_by_username(db, username) if "\x00" not in username else None
    db.rollback()
    # Unknown user, OAuth-only user and wrong password all look alike; none of them is slow (spec §11).
    if user is None or user.hashed_password is None or not verify_password(user.hashed_password, password):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "Unauthorized", headers={"WWW-Authenticate": "Bearer"})
    token, expiration = create_token(settings, user.id, user.username)
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
