"""Batch job bodies (spec §7, §14.2, §14.4)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from balsam.server.schemas.common import (
    Id,
    InputModel,
    Int32,
    NaiveUTC,
    NonNegInt64,
    OutputModel,
    Str,
    StrDict,
    empty_dict_if_null,
    not_null,
)

BatchJobState = Literal["pending_submission", "queued", "running", "finished", "submit_failed", "pending_deletion"]
JobMode = Literal["serial", "mpi"]


class BatchJobPartition(InputModel):
    job_mode: JobMode
    num_nodes: Int32
    filter_tags: StrDict = Field(default_factory=dict)


class BatchJobCreate(InputModel):
    site_id: Id
    project: Annotated[Str, Field(max_length=1024)]
    queue: Annotated[Str, Field(max_length=1024)]
    num_nodes: Int32
    wall_time_min: Int32
    job_mode: JobMode
    optional_params: StrDict = Field(default_factory=dict)
    filter_tags: StrDict = Field(default_factory=dict)
    partitions: list[BatchJobPartition] | None = None


class BatchJobUpdate(InputModel):
    """Only the keys present are applied. Everything else about a batch job is fixed at creation."""

    scheduler_id: NonNegInt64 | None = None
    state: BatchJobState | None = None
    status_info: StrDict | None = None
    start_time: NaiveUTC | None = None
    end_time: NaiveUTC | None = None

    _not_null = not_null("state", "status_info")


class BatchJobPatch(BatchJobUpdate):
    id: Id


class BatchJobOut(OutputModel):
    id: int
    site_id: int
    scheduler_id: int | None
    project: str
    queue: str
    num_nodes: int
    wall_time_min: int
    job_mode: str
    optional_params: dict[str, str]
    filter_tags: dict[str, str]
    partitions: list[BatchJobPartition] | None
    state: str
    status_info: dict[str, str]
    start_time: NaiveUTC | None
    end_time: NaiveUTC | None

    _never_null = empty_dict_if_null("optional_params", "filter_tags", "status_info")
