"""App bodies (spec §4, §14.1)."""

from __future__ import annotations

import posixpath
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from balsam.server.schemas.common import Id, InputModel, OutputModel, Str, not_null

MAX_SERIALIZED_CLASS = 262_144


def _identifier(name: str) -> str:
    if not name.isidentifier():
        raise ValueError("must be a valid Python identifier")
    return name


def _relative(path: str) -> str:
    if posixpath.isabs(path):
        raise ValueError("must be a relative path")
    return path


def _default_to_str(value: Any) -> Any:
    if isinstance(value, bool | int | float):
        return str(value)
    return value


AppName = Annotated[Str, Field(min_length=1, max_length=128), AfterValidator(_identifier)]


class AppParameter(InputModel):
    required: bool
    default: Annotated[Str | None, BeforeValidator(_default_to_str)] = None
    help: Str = ""

    @model_validator(mode="after")
    def _default_matches_required(self) -> AppParameter:
        # A required parameter has no default; an optional one must have a non-empty default (spec §14.1).
        if self.required and self.default not in (None, ""):
            raise ValueError("a required parameter must not have a default")
        if not self.required and not self.default:
            raise ValueError("an optional parameter needs a non-empty default")
        return self


class TransferSlot(InputModel):
    required: bool
    direction: Literal["in", "out"]
    local_path: Annotated[Str, AfterValidator(_relative)]
    description: Str = ""
    recursive: bool = False


class _AppFields(InputModel):
    description: Str = ""
    parameters: dict[Annotated[Str, AfterValidator(_identifier)], AppParameter] = Field(default_factory=dict)
    transfers: dict[Annotated[Str, AfterValidator(_identifier)], TransferSlot] = Field(default_factory=dict)


class AppCreate(_AppFields):
    site_id: Id
    name: AppName
    serialized_class: Annotated[Str, Field(max_length=MAX_SERIALIZED_CLASS)]
    source_code: Str


class AppUpdate(_AppFields):
    site_id: Id | None = None
    name: AppName | None = None
    serialized_class: Annotated[Str, Field(max_length=MAX_SERIALIZED_CLASS)] | None = None
    source_code: Str | None = None

    _not_null = not_null("site_id", "name", "serialized_class", "source_code", "description")


class AppOut(OutputModel):
    id: int
    site_id: int
    name: str
    serialized_class: str
    source_code: str
    description: str
    parameters: dict[str, AppParameter]
    transfers: dict[str, TransferSlot]
