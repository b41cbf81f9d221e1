"""Job state log events (spec §9)."""

from __future__ import annotations

from typing import Any

from pydantic import field_validator

from balsam.server.schemas.common import NaiveUTC, OutputModel


class LogEventOut(OutputModel):
    id: int
    job_id: int
    timestamp: NaiveUTC
    from_state: str
    to_state: str
    data: dict[str, Any]

    @field_validator("data", mode="before")
    @classmethod
    def _never_null(cls, value: Any) -> Any:
        return {} if value is None else value
