"""Site bodies (spec §3)."""

from __future__ import annotations

import posixpath
import uuid
from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from balsam.server.schemas.common import (
    InputModel,
    Int32,
    NaiveUTC,
    NonNegInt64,
    OutputModel,
    Str,
    StrDict,
    not_null,
)

BatchJobStateName = Literal["pending_submission", "queued", "running", "finished", "submit_failed", "pending_deletion"]


def _absolute(path: str) -> str:
    if not posixpath.isabs(path):
        raise ValueError("must be an absolute path")
    return path


def _transfer_url(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if not sep or not scheme or not rest:
        raise ValueError("must be a URL with a scheme, e.g. globus://<uuid> or rsync://user@host")
    return url


AbsPath = Annotated[Str, Field(min_length=1, max_length=4096), AfterValidator(_absolute)]
TransferURL = Annotated[Str, Field(max_length=4096), AfterValidator(_transfer_url)]


class BackfillWindow(InputModel):
    num_nodes: Int32
    wall_time_min: Int32


class QueuedJob(InputModel):
    scheduler_id: NonNegInt64
    state: BatchJobStateName
    queue: Str
    num_nodes: Int32
    wall_time_min: Int32
    project: Str
    time_remaining_min: Int32
    queued_time_min: Int32


class AllowedQueue(InputModel):
    max_nodes: Int32
    max_walltime: Int32
    max_queued_jobs: Int32


class _SiteFields(InputModel):
    globus_endpoint_id: uuid.UUID | None = None
    backfill_windows: dict[Str, list[BackfillWindow]] = Field(default_factory=dict)
    queued_jobs: dict[Str, QueuedJob] = Field(default_factory=dict)
    optional_batch_job_params: StrDict = Field(default_factory=dict)
    allowed_projects: list[Str] = Field(default_factory=list)
    allowed_queues: dict[Str, AllowedQueue] = Field(default_factory=dict)
    transfer_locations: dict[Str, TransferURL] = Field(default_factory=dict)


SiteName = Annotated[Str, Field(min_length=1, max_length=100)]


class SiteCreate(_SiteFields):
    name: SiteName
    path: AbsPath


class SiteUpdate(_SiteFields):
    """Partial: only the fields present in the body are applied (`model_fields_set`)."""

    name: SiteName | None = None
    path: AbsPath | None = None

    _not_null = not_null("name", "path")


class SiteOut(OutputModel):
    id: int
    name: str
    path: str
    globus_endpoint_id: uuid.UUID | None
    backfill_windows: dict[str, list[BackfillWindow]]
    queued_jobs: dict[str, QueuedJob]
    optional_batch_job_params: dict[str, str]
    allowed_projects: list[str]
    allowed_queues: dict[str, AllowedQueue]
    transfer_locations: dict[str, str]
    last_refresh: NaiveUTC
    creation_date: NaiveUTC
