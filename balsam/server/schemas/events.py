"""Job state log events (spec §9)."""

from __future__ import annotations

from typing import Any

from balsam.server.schemas.common import NaiveUTC, OutputModel, empty_dict_if_null


class LogEventOut(OutputModel):
    id: int
    job_id: int
    timestamp: NaiveUTC
    from_state: str
    to_state: str
    data: dict[str, Any]

    _never_null = empty_dict_if_null("data")
