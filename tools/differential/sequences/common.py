"""Constants and constructors shared by the sequence modules."""

from __future__ import annotations

from typing import Any

from tools.differential.steps import Step

# Client-style timestamps: `str(datetime)` (a space) as the client puts them in queries, ISO in bodies.
T0 = "2024-01-02 03:04:05.123456"
T0_ISO = "2024-01-02T03:04:05.123456"
T1_ISO = "2024-01-02T03:05:05.000001"
MISSING = 2147483000  # an id that exists on neither server (fits in int4)
HUGE = "99999999999999999999"  # an id beyond int8
TOO_BIG_INT = 2**40  # beyond the int4 columns (num_nodes, wall_time_min, return_code)
LIST_ROUTES = ("/sites/", "/apps/", "/jobs/", "/batch-jobs/", "/transfers/", "/events/")


def get(name: str, path: str, *query: tuple[str, Any], **kw: Any) -> Step:
    return Step(name, "GET", path, query=tuple(query), **kw)


def post(name: str, path: str, body: Any = None, **kw: Any) -> Step:
    return Step(name, "POST", path, body=body, **kw)


def put(name: str, path: str, body: Any = None, *query: tuple[str, Any], **kw: Any) -> Step:
    return Step(name, "PUT", path, body=body, query=tuple(query), **kw)


def patch(name: str, path: str, body: Any = None, **kw: Any) -> Step:
    return Step(name, "PATCH", path, body=body, **kw)


def delete(name: str, path: str, *query: tuple[str, Any], **kw: Any) -> Step:
    return Step(name, "DELETE", path, query=tuple(query), **kw)


def status_item(job: str, state: str, timestamp: str = T0_ISO, data: Any = None, **extra: Any) -> dict[str, Any]:
    """One item of the site StatusUpdater's `PATCH /jobs/` (spec §11): id, state, timestamp, data, extras."""
    return {"id": f"{{{job}}}", "state": state, "state_timestamp": timestamp, "state_data": data or {}, **extra}
