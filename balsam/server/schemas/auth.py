"""Auth request and response bodies (spec §1)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from balsam.server.schemas.common import InputModel, NaiveUTC, OutputModel, Str

Username = Annotated[Str, Field(min_length=1, max_length=256)]
Password = Annotated[Str, Field(min_length=1, max_length=1024)]


class UserCreate(InputModel):
    username: Username
    password: Password


class UserOut(OutputModel):
    id: int
    username: str


class TokenOut(OutputModel):
    access_token: str
    token_type: str = "bearer"
    expiration: NaiveUTC


class DeviceCodeOut(OutputModel):
    """Exactly these six keys: the client splats the reply into a function call (spec §1.4)."""

    device_code: str
    user_code: str
    verification_uri: str
    verification_uri_complete: str
    expires_in: float
    interval: float
