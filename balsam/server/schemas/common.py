"""Field types shared by the request/response schemas (spec §0 conventions)."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, field_validator

T = TypeVar("T")

INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1
MAX_ITEMS_PER_BULK_OP = 5000
MAX_PAGE_SIZE = 100_000


def _no_nul(value: str) -> str:
    # PostgreSQL text and jsonb cannot hold U+0000; reject it here instead of failing in SQL.
    if "\x00" in value:
        raise ValueError("must not contain the NUL character (\\u0000)")
    return value


def check_json_no_nul(value: Any) -> Any:
    """Walk free-form JSON and reject NUL characters in keys and strings."""
    if isinstance(value, str):
        _no_nul(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            _no_nul(str(key))
            check_json_no_nul(item)
    elif isinstance(value, list):
        for item in value:
            check_json_no_nul(item)
    return value


def _to_naive_utc(value: datetime) -> datetime:
    if value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


def _coerce_str_values(value: Any) -> Any:
    """Dict[str, str] inputs: numbers and bools become their Python str(); nested objects and null fail."""
    if not isinstance(value, dict):
        return value
    out: dict[str, str] = {}
    for key, item in value.items():
        if isinstance(item, str):
            out[key] = item
        elif isinstance(item, bool | int | float):
            out[key] = str(item)
        else:
            raise ValueError(f"value of {key!r} must be a string, number or boolean")
    return out


Str = Annotated[str, AfterValidator(_no_nul)]
# Naive UTC on input (aware values are converted) and on output: the published client needs naive values.
NaiveUTC = Annotated[
    datetime,
    AfterValidator(_to_naive_utc),
    PlainSerializer(lambda v: v.isoformat(), return_type=str, when_used="json"),
]


def _pydantic1_int(value: Any) -> Any:
    """Read an integer as upstream's pydantic 1 did: a float is truncated toward zero. The published client
    sends floats where integers are declared, e.g. the serial launcher's `max_wall_time_min=4.98` (upstream
    answers 200 and uses 4). Strings are left to pydantic's lax parsing, which already takes "5" as 5."""
    if type(value) is float and math.isfinite(value):
        return math.trunc(value)
    return value


PYDANTIC1_INT = BeforeValidator(_pydantic1_int)

# The integer ranges of the columns, validated by pydantic-core alone (the all-Rust fast path of job creation).
CoreInt32 = Annotated[int, Field(ge=-(2**31), le=INT32_MAX)]
CoreId = Annotated[int, Field(ge=-INT64_MAX, le=INT64_MAX)]
# The same ranges as request bodies read them (PYDANTIC1_INT); values still out of range get 422 (§14.2).
Int32 = Annotated[CoreInt32, PYDANTIC1_INT]
Id = Annotated[CoreId, PYDANTIC1_INT]
PosInt64 = Annotated[int, Field(ge=1, le=INT64_MAX), PYDANTIC1_INT]
NO_ROW_ID = -1  # no row has it: ids count from 1 and scheduler ids are >= 0


def _beyond_bigint_matches_nothing(value: int) -> int:
    return value if -INT64_MAX <= value <= INT64_MAX else NO_ROW_ID


# An id in a path or a query filter. One beyond bigint can name no row, so it is read as NO_ROW_ID: the
# lookup answers 404 or an empty list, as upstream does (spec §14.2), instead of failing in SQL or with 422.
LookupId = Annotated[int, AfterValidator(_beyond_bigint_matches_nothing)]
NonNegInt64 = Annotated[int, Field(ge=0, le=INT64_MAX), PYDANTIC1_INT]
StrDict = Annotated[dict[Str, Str], BeforeValidator(_coerce_str_values)]
JsonDict = Annotated[dict[str, Any], AfterValidator(check_json_no_nul)]


def not_null(*fields: str) -> Any:
    """A validator for partial updates: these fields may be left out of the body, but not sent as null."""

    def check(value: Any) -> Any:
        if value is None:
            raise ValueError("may be omitted but not null")
        return value

    return field_validator(*fields)(check)


def empty_dict_if_null(*fields: str) -> Any:
    """An output validator: a dict field read as NULL is emitted as {} (the client rejects null dicts)."""

    def coerce(value: Any) -> Any:
        return {} if value is None else value

    return field_validator(*fields, mode="before")(coerce)


class InputModel(BaseModel):
    """Request bodies: unknown fields are ignored (spec §0), whitespace is kept as sent, and a number sent
    for a string field becomes its string, as upstream's pydantic 1 read it (integers: PYDANTIC1_INT)."""

    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)


class OutputModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Page(BaseModel, Generic[T]):
    count: int
    results: list[T]


class Paging(BaseModel):
    limit: int = Field(MAX_PAGE_SIZE, ge=0, le=MAX_PAGE_SIZE)
    offset: int = Field(0, ge=0, le=INT64_MAX)


def parse_kv_filters(items: list[str] | None) -> dict[str, str]:
    """`KEY:VALUE` strings split at the first colon; entries with no colon are dropped, the last key wins."""
    result: dict[str, str] = {}
    for item in items or []:
        key, sep, val = item.partition(":")
        if sep:
            result[key] = val
    return result


def like_escape(value: str) -> str:
    """Escape LIKE metacharacters so a substring filter matches literally."""
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
