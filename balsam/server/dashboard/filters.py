"""The jobs table's query string, read in the syntax of `GET /jobs/` (spec §5.2, §0).

The same parameter names and formats as the API: `site_id`, `app_id`, `state` (repeatable), `tags=KEY:VALUE`
(repeatable, split at the first colon), `workdir__contains` and `ordering`. A dashboard URL therefore reads
like the API request that lists the same jobs, and the page shows that request. Where the API would answer
422 (a state that does not exist, an id that is not a number), the page says what is wrong instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from starlette.datastructures import QueryParams

from balsam.server.crud.jobs import ORDERINGS, JobFilters
from balsam.server.dashboard.states import ALL_STATES
from balsam.server.schemas.common import INT64_MAX, parse_kv_filters

PAGE_SIZE = 50


@dataclass
class JobTableQuery:
    site_id: int | None = None
    app_id: int | None = None
    states: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)  # as typed, KEY:VALUE
    workdir_contains: str = ""
    ordering: str = ""
    offset: int = 0
    errors: list[str] = field(default_factory=list)

    def job_filters(self) -> JobFilters:
        return JobFilters(
            site_ids=[self.site_id] if self.site_id is not None else None,
            app_id=self.app_id,
            states=self.states or None,
            tags=parse_kv_filters(self.tags) or None,
            workdir_contains=self.workdir_contains or None,
        )

    def params(self, **changes: Any) -> dict[str, Any]:
        """The query parameters of this view (with `changes`), in the API's names."""
        values: dict[str, Any] = {
            "site_id": self.site_id,
            "app_id": self.app_id,
            "state": self.states,
            "tags": self.tags,
            "workdir__contains": self.workdir_contains,
            "ordering": self.ordering,
            "offset": self.offset or None,
        }
        values.update(changes)
        return {k: v for k, v in values.items() if v not in (None, "", [])}

    def api_request(self) -> str:
        """The REST request that lists the same page of jobs."""
        params = self.params(offset=None)
        params["limit"] = PAGE_SIZE
        if self.offset:
            params["offset"] = self.offset
        return "GET /jobs/?" + urlencode(params, doseq=True)


def parse(query: QueryParams) -> JobTableQuery:
    q = JobTableQuery()
    q.site_id = _id(q, query.get("site_id"), "site_id")
    q.app_id = _id(q, query.get("app_id"), "app_id")
    for state in query.getlist("state"):
        if state in ALL_STATES:
            q.states.append(state)
        elif state:
            q.errors.append(f"state: {state!r} is not a job state")
    for tag in query.getlist("tags"):
        if not tag:
            continue
        if ":" in tag:
            q.tags.append(tag)
        else:
            q.errors.append(f"tags: {tag!r} has no colon (write KEY:VALUE); the API ignores such entries")
    q.workdir_contains = query.get("workdir__contains", "")
    ordering = query.get("ordering", "")
    if ordering in ORDERINGS:
        q.ordering = ordering
    elif ordering:
        q.errors.append(f"ordering: {ordering!r} is not one of {', '.join(ORDERINGS)}")
    q.offset = _id(q, query.get("offset"), "offset") or 0
    q.offset = max(q.offset, 0)
    return q


def _id(q: JobTableQuery, raw: str | None, name: str) -> int | None:
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        q.errors.append(f"{name}: {raw!r} is not a whole number")
        return None
    if not 0 <= value <= INT64_MAX:
        q.errors.append(f"{name}: {raw!r} is out of range")
        return None
    return value
