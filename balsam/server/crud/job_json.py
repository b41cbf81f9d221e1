"""Fast job serialisation: the §5.1 JSON object is built by PostgreSQL, Python only joins strings.

Use `job_json_column()` in any SELECT over `jobs` (acquire, detail) and `json_array()` to wrap the fetched
strings, `jobs_json_by_ids()` to serialise given ids in a given order, or `job_rows_json()` (row_to_json,
the cheapest, used by the job list) around a filtered, ordered, paged SELECT of `job_columns()`.

`session_id` is not a column of `jobs`: it comes from the job's lease (`job_leases`), looked up per row
(`lease_session_id`) or given by the caller (acquire knows it).

A job's `last_update` is written with `+00:00` (`2024-01-02T03:04:05.123456+00:00`), as upstream writes it in
job objects and as the client's users compare it with aware datetimes (spec §14.11); every other timestamp
of the API is naive UTC (§0). Dict columns are coalesced so they are never `null`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    BindParameter,
    ColumnElement,
    FromClause,
    Select,
    Text,
    bindparam,
    cast,
    exists,
    func,
    literal_column,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session
from sqlalchemy.types import UserDefinedType

from balsam.server.db.tables import Job, JobLease

_DICT_COLUMNS = frozenset({"tags", "data", "launch_params"})
# Order and names follow JobOut (balsam.server.schemas.jobs).
_COLUMNS = (
    "id",
    "app_id",
    "workdir",
    "tags",
    "parent_ids",
    "state",
    "last_update",
    "session_id",
    "batch_job_id",
    "serialized_parameters",
    "serialized_return_value",
    "serialized_exception",
    "data",
    "return_code",
    "pending_file_cleanup",
    "num_nodes",
    "ranks_per_node",
    "threads_per_rank",
    "threads_per_core",
    "gpus_per_rank",
    "node_packing_count",
    "wall_time_min",
    "launch_params",
)


# to_char rather than a timestamptz cast: the text does not depend on the session's TimeZone, which a
# connection pooler may not pass through. Always six fraction digits, so the text also sorts like the time.
_AWARE_FORMAT: ColumnElement[str] = literal_column("""'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'""")


def last_update_json(column: ColumnElement[Any]) -> ColumnElement[str]:
    """SQL: a job's `last_update` as its JSON text (ISO-8601 with `+00:00`, spec §14.11)."""
    return func.to_char(column, _AWARE_FORMAT)


def last_update_text(value: datetime) -> str:
    """Python: the same text as `last_update_json` for a naive UTC value (the bulk-create reply)."""
    return value.isoformat(timespec="microseconds") + "+00:00"


def lease_session_id(table: FromClause | None = None) -> ColumnElement[int | None]:
    """SQL: the session holding the job of each row of `table` (default `jobs`), NULL when it is free."""
    src = table if table is not None else Job.__table__
    leases = JobLease.__table__
    return select(leases.c.session_id).where(leases.c.job_id == src.c.id).scalar_subquery()


def job_is_free(table: FromClause | None = None) -> ColumnElement[bool]:
    """SQL: no session holds the job of this row (an anti-join on `job_leases`)."""
    src = table if table is not None else Job.__table__
    leases = JobLease.__table__
    return ~exists().where(leases.c.job_id == src.c.id)


def job_columns(table: FromClause | None = None) -> list[ColumnElement[Any]]:
    """Every §5.1 key as a column (`last_update` as its JSON text, `session_id` from the lease), in the order
    of `jobs` with `session_id` where it used to be, for `job_rows_json`."""
    src = table if table is not None else Job.__table__
    columns: list[ColumnElement[Any]] = []
    for c in src.c:
        columns.append(last_update_json(c).label("last_update") if c.name == "last_update" else c)
        if c.name == "app_id":
            columns.append(lease_session_id(src).label("session_id"))
    return columns


def job_json_column(
    table: FromClause | None = None,
    *,
    with_session_id: bool = True,
    session_id: ColumnElement[Any] | None = None,
) -> ColumnElement[str]:
    """`json_build_object(...)::text` of one job row of `table` (default: the `jobs` table). `session_id` is
    the holder's id when the caller knows it (acquire); by default it is looked up in `job_leases`."""
    src = table if table is not None else Job.__table__
    args: list[Any] = []
    for name in _COLUMNS:
        if name == "session_id":
            if not with_session_id:
                continue
            col: Any = session_id if session_id is not None else lease_session_id(src)
        else:
            col = src.c[name]
        if name in _DICT_COLUMNS:
            col = func.coalesce(col, literal_column("'{}'::jsonb"))
        elif name == "last_update":
            col = last_update_json(col)
        elif name == "parent_ids":
            col = func.coalesce(col, literal_column("'{}'::bigint[]"))
        args.extend([literal_column(f"'{name}'"), col])
    return cast(func.json_build_object(*args), Text)


def job_rows_json(inner: Select[Any], order_by: Sequence[str] = ("id",)) -> Select[tuple[str]]:
    """`row_to_json` of each row of `inner` (a SELECT of `job_columns()`, already filtered, ordered and
    paged). Cheaper than json_build_object; correct because those columns are exactly the §5.1 keys
    (tests/test_jobs.py checks it). `order_by` names the sort keys again (e.g. "-last_update", "id"), so
    the outer query keeps the inner order; `last_update` is text there, compared bytewise (fixed width).
    """
    sub = inner.subquery("j")

    def key(name: str) -> Any:
        column: Any = sub.c[name.lstrip("-")]
        if name.lstrip("-") == "last_update":
            column = column.collate("C")
        return column.desc() if name.startswith("-") else column

    keys = [key(k) for k in order_by]
    return select(cast(func.row_to_json(literal_column("j")), Text)).select_from(sub).order_by(*keys)


_ARRAY_TYPE: Any = ARRAY(BigInteger)


class _BigIntArray(UserDefinedType[list[int]]):
    """`bigint[]` with no Python-side processing: psycopg2 adapts the list in C (ARRAY's own bind
    processor walks every element in Python, which shows up in profiles of 5,000-id requests)."""

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "BIGINT[]"


def bigint_array(values: Iterable[int], name: str | None = None) -> ColumnElement[list[int]]:
    """One `bigint[]` parameter: `col == func.any(bigint_array(ids))` beats an IN list of thousands."""
    param: BindParameter[list[int]] = bindparam(name, list(values), type_=_BigIntArray(), unique=name is None)
    return cast(param, _ARRAY_TYPE)


def json_array(items: Iterable[str]) -> str:
    return "[" + ",".join(items) + "]"


def jobs_json_by_ids(db: Session, ids: Sequence[int], *, with_session_id: bool = True) -> str:
    """A JSON array of the given jobs, in the order of `ids` (ids that do not exist are skipped)."""
    if not ids:
        return "[]"
    jobs = Job.__table__
    stmt = select(jobs.c.id, job_json_column(jobs, with_session_id=with_session_id)).where(
        jobs.c.id == func.any(bigint_array(ids))
    )
    by_id = {row[0]: row[1] for row in db.execute(stmt)}
    return json_array(by_id[i] for i in ids if i in by_id)
