"""Job bodies and the job representation (spec §5.1, §5.3, §5.4, §14.2, §14.3).

`JobOut` carries exactly the §5.1 keys. Hot paths (bulk create, list, acquire) do not build `JobOut`
objects: they emit JSON built in SQL (`balsam.server.crud.job_json`); `JobOut` documents the shape, serves
single-object replies and validates rows for code that wants a model.
"""

from __future__ import annotations

import math
import posixpath
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, NotRequired

from pydantic import AfterValidator, Field, TypeAdapter, ValidationError, field_validator, model_validator
from typing_extensions import TypedDict  # pydantic needs this one on Python < 3.12

from balsam.server.schemas.common import (
    CoreId,
    CoreInt32,
    Id,
    InputModel,
    Int32,
    JsonDict,
    NaiveUTC,
    OutputModel,
    PosInt64,
    Str,
    StrDict,
    empty_dict_if_null,
    not_null,
)

MAX_SERIALIZED = 512_000


class JobState(StrEnum):
    CREATED = "CREATED"
    AWAITING_PARENTS = "AWAITING_PARENTS"
    READY = "READY"
    STAGED_IN = "STAGED_IN"
    PREPROCESSED = "PREPROCESSED"
    RUNNING = "RUNNING"
    RUN_DONE = "RUN_DONE"
    RUN_ERROR = "RUN_ERROR"
    RUN_TIMEOUT = "RUN_TIMEOUT"
    RESTART_READY = "RESTART_READY"
    POSTPROCESSED = "POSTPROCESSED"
    STAGED_OUT = "STAGED_OUT"
    JOB_FINISHED = "JOB_FINISHED"
    FAILED = "FAILED"


RUNNABLE_STATES = frozenset({JobState.PREPROCESSED, JobState.RESTART_READY})
DONE_STATES = frozenset({JobState.JOB_FINISHED, JobState.FAILED})


def _relative(path: str) -> str:
    if not path or posixpath.isabs(path):
        raise ValueError("must be a non-empty relative path")
    return path


def _absolute(path: str) -> str:
    if not posixpath.isabs(path):
        raise ValueError("must be an absolute path")
    return path


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


Workdir = Annotated[Str, Field(max_length=4096), AfterValidator(_relative)]
Serialized = Annotated[Str, Field(max_length=MAX_SERIALIZED)]
GpusPerRank = Annotated[float, AfterValidator(_finite)]


class TransferSpec(InputModel):
    """One entry of `JobCreate.transfers`: `{slot: {location_alias, path}}`."""

    location_alias: Annotated[Str, Field(min_length=1, max_length=1024)]
    path: Annotated[Str, Field(min_length=1, max_length=4096), AfterValidator(_absolute)]


class JobCreate(InputModel):
    app_id: Id
    workdir: Workdir
    tags: StrDict = Field(default_factory=dict)
    serialized_parameters: Serialized = ""
    data: JsonDict = Field(default_factory=dict)
    return_code: Int32 | None = None
    num_nodes: Int32 = 1
    ranks_per_node: Int32 = 1
    threads_per_rank: Int32 = 1
    threads_per_core: Int32 = 1
    gpus_per_rank: GpusPerRank = 0.0
    node_packing_count: Int32 = 1
    wall_time_min: Int32 = 0
    launch_params: StrDict = Field(default_factory=dict)
    parent_ids: list[Id] = Field(default_factory=list, max_length=100_000)
    transfers: dict[Annotated[Str, Field(max_length=256)], TransferSpec] = Field(default_factory=dict)

    @field_validator("parent_ids")
    @classmethod
    def _as_set(cls, value: list[int]) -> list[int]:
        # parent_ids is a set on the wire: drop duplicates, keep a stable order.
        return sorted(set(value))


class _FastTransferSpec(TypedDict):
    location_alias: Annotated[str, Field(min_length=1, max_length=1024)]
    path: Annotated[str, Field(min_length=1, max_length=4096, pattern=r"^/")]


class JobCreateDict(TypedDict):
    """JobCreate checked entirely by pydantic-core (no Python validators, no model objects), for bodies
    that contain no `\\u0000` escape: 5,000 items validate several times faster. Stricter than JobCreate
    (dict values must already be strings), so `job_create_rows` falls back to JobCreate when this rejects
    a body; either way the accepted values are the same. `parent_ids` is de-duplicated by the caller.
    """

    app_id: CoreId
    workdir: Annotated[str, Field(min_length=1, max_length=4096, pattern=r"^[^/]")]
    tags: NotRequired[dict[str, str]]
    serialized_parameters: NotRequired[Annotated[str, Field(max_length=MAX_SERIALIZED)]]
    data: NotRequired[dict[str, Any]]
    return_code: NotRequired[CoreInt32 | None]
    num_nodes: NotRequired[CoreInt32]
    ranks_per_node: NotRequired[CoreInt32]
    threads_per_rank: NotRequired[CoreInt32]
    threads_per_core: NotRequired[CoreInt32]
    gpus_per_rank: NotRequired[Annotated[float, Field(allow_inf_nan=False)]]
    node_packing_count: NotRequired[CoreInt32]
    wall_time_min: NotRequired[CoreInt32]
    launch_params: NotRequired[dict[str, str]]
    parent_ids: NotRequired[Annotated[list[CoreId], Field(max_length=100_000)]]
    transfers: NotRequired[dict[Annotated[str, Field(max_length=256)], _FastTransferSpec]]


# JobCreate's defaults, for rows validated as JobCreateDict. Shared objects: rows must not mutate them.
JOB_CREATE_DEFAULTS: dict[str, Any] = {
    name: (field.default_factory() if field.default_factory is not None else field.default)  # type: ignore[call-arg]
    for name, field in JobCreate.model_fields.items()
    if not field.is_required()
}
_CREATE_FAST = TypeAdapter(list[JobCreateDict])
_CREATE_FULL = TypeAdapter(list[JobCreate])


def job_create_rows(raw: bytes) -> list[dict[str, Any]]:
    """Validate a `POST /jobs/` body into plain dicts with every JobCreate field present.

    Bodies with no NUL escape go through the all-Rust JobCreateDict first; anything it rejects is validated
    again by JobCreate, which coerces what it may (e.g. numbers in tags) and raises the 422 details.
    """
    if b"\\u0000" not in raw and b"\x00" not in raw:
        try:
            return [{**JOB_CREATE_DEFAULTS, **item} for item in _CREATE_FAST.validate_json(raw)]
        except ValidationError:
            pass
    models = _CREATE_FULL.validate_json(raw or b"null")
    rows: list[dict[str, Any]] = _CREATE_FULL.dump_python(models, mode="json")
    return rows


# Fields a JobUpdate may change, stored on the job row.
UPDATABLE_FIELDS: tuple[str, ...] = (
    "workdir",
    "tags",
    "serialized_parameters",
    "data",
    "return_code",
    "num_nodes",
    "ranks_per_node",
    "threads_per_rank",
    "threads_per_core",
    "launch_params",
    "gpus_per_rank",
    "node_packing_count",
    "wall_time_min",
    "batch_job_id",
    "state",
    "pending_file_cleanup",
    "serialized_return_value",
    "serialized_exception",
)
# Updatable fields that may be left out but never sent as null (the rest are nullable columns).
_NULLABLE = ("return_code", "batch_job_id")
_NOT_NULL = tuple(name for name in UPDATABLE_FIELDS if name not in _NULLABLE)


class JobUpdate(InputModel):
    """PUT body / PATCH item (spec §5.4). Only the keys present (`model_fields_set`) are applied.

    `state_timestamp` and `state_data` are not stored on the job: they become the event's timestamp and
    data. A null `state_timestamp` means "now" and a null `state_data` means `{}` (spec §14.3).
    Read-only fields (`id` of a PUT body, `app_id`, `parent_ids`, `transfers`, `session_id`, `last_update`) are
    not declared, so whatever value a client sends for them is ignored, as upstream does (§5.4, §14.12):
    clients echo whole objects back.
    """

    workdir: Workdir | None = None
    tags: StrDict | None = None
    serialized_parameters: Serialized | None = None
    data: JsonDict | None = None
    return_code: Int32 | None = None
    num_nodes: Int32 | None = None
    ranks_per_node: Int32 | None = None
    threads_per_rank: Int32 | None = None
    threads_per_core: Int32 | None = None
    launch_params: StrDict | None = None
    gpus_per_rank: GpusPerRank | None = None
    node_packing_count: Int32 | None = None
    wall_time_min: Int32 | None = None
    batch_job_id: Id | None = None
    state: JobState | None = None
    pending_file_cleanup: bool | None = None
    serialized_return_value: Serialized | None = None
    serialized_exception: Serialized | None = None
    state_timestamp: NaiveUTC | None = None
    state_data: JsonDict | None = None

    _not_null = not_null(*_NOT_NULL)

    @model_validator(mode="before")
    @classmethod
    def _null_state_is_absent(cls, data: Any) -> Any:
        # Upstream reads `"state": null` as "no state given" and applies the rest of the item (200).
        if isinstance(data, dict) and "state" in data and data["state"] is None:
            data = {key: value for key, value in data.items() if key != "state"}
        return data


class JobPatchItem(JobUpdate):
    """One item of `PATCH /jobs/`: the job id plus its own JobUpdate keys."""

    id: PosInt64


class JobOut(OutputModel):
    """A job as list, detail and acquire replies carry it: exactly the spec §5.1 keys."""

    id: int
    app_id: int
    workdir: str
    tags: dict[str, str]
    parent_ids: list[int]
    state: str
    last_update: Annotated[datetime, Field(description="UTC with a +00:00 offset, as upstream (spec §14.11)")]
    session_id: int | None
    batch_job_id: int | None
    serialized_parameters: str
    serialized_return_value: str
    serialized_exception: str
    data: dict[str, Any]
    return_code: int | None
    pending_file_cleanup: bool
    num_nodes: int
    ranks_per_node: int
    threads_per_rank: int
    threads_per_core: int
    gpus_per_rank: float
    node_packing_count: int
    wall_time_min: int
    launch_params: dict[str, str]

    _never_null = empty_dict_if_null("tags", "data", "launch_params")

    @field_validator("parent_ids", mode="before")
    @classmethod
    def _list(cls, value: Any) -> Any:
        return [] if value is None else list(value)


JOB_OUT_FIELDS: tuple[str, ...] = tuple(JobOut.model_fields)
