"""Transfer item bodies (spec §6)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from balsam.server.schemas.common import (
    InputModel,
    JsonDict,
    OutputModel,
    PosInt64,
    Str,
    empty_dict_if_null,
    not_null,
)

TransferState = Literal["awaiting_job", "pending", "active", "inactive", "done", "error"]
TransferDirection = Literal["in", "out"]


class TransferItemUpdate(InputModel):
    """PUT body / PATCH item: only the keys present are applied; `transfer_info` replaces the old value."""

    state: TransferState | None = None
    task_id: Annotated[Str, Field(max_length=4096)] | None = None
    transfer_info: JsonDict | None = None

    _not_null = not_null("state", "task_id", "transfer_info")


class TransferItemPatch(TransferItemUpdate):
    id: PosInt64


class TransferItemOut(OutputModel):
    id: int
    job_id: int
    direction: str
    local_path: str
    remote_path: str
    location_alias: str
    recursive: bool
    state: str
    task_id: str
    transfer_info: dict[str, Any]

    _never_null = empty_dict_if_null("transfer_info")
