"""Session bodies (spec §8, §14.6)."""

from __future__ import annotations

import math
from typing import Annotated

from pydantic import AfterValidator, Field

from balsam.server.schemas.common import PYDANTIC1_INT, Id, InputModel, Int32, NaiveUTC, OutputModel, StrDict
from balsam.server.schemas.jobs import JobState

MAX_JOBS_PER_ACQUIRE = 2048
DEFAULT_ACQUIRE_STATES = (JobState.PREPROCESSED, JobState.RESTART_READY)
SORT_LONG_LARGE_FIRST = "long_large_first"


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


class SessionCreate(InputModel):
    site_id: Id
    batch_job_id: Id | None = None


class SessionOut(OutputModel):
    id: int
    site_id: int
    batch_job_id: int | None
    heartbeat: NaiveUTC


class SessionAcquire(InputModel):
    """`POST /sessions/{id}`. A `max_wall_time_min` or `max_nodes_per_job` of null or 0 means no limit."""

    max_num_jobs: Annotated[int, Field(ge=1, le=MAX_JOBS_PER_ACQUIRE), PYDANTIC1_INT]
    filter_tags: StrDict
    states: list[JobState] = Field(default_factory=lambda: list(DEFAULT_ACQUIRE_STATES), max_length=64)
    app_ids: list[Id] = Field(default_factory=list, max_length=100_000)
    max_wall_time_min: Int32 | None = None
    max_nodes_per_job: Int32 | None = None
    max_aggregate_nodes: Annotated[float, AfterValidator(_finite)] | None = None
    serial_only: bool = False
    sort_by: str | None = None
