"""`/jobs/` routes (spec §5): thin wrappers over balsam.server.crud.jobs.

Bulk bodies are validated straight from the raw JSON bytes (`TypeAdapter.validate_json`) and replies are
JSON strings built by PostgreSQL, which keeps 5,000-job requests cheap.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Body, Depends, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, TypeAdapter, ValidationError

from balsam.server.api.deps import CurrentUser, DbDep, PagingDep, PublisherDep
from balsam.server.crud import jobs
from balsam.server.crud.transactions import run_write
from balsam.server.pubsub import publish_events
from balsam.server.schemas.common import LookupId, NaiveUTC, Page, parse_kv_filters
from balsam.server.schemas.jobs import JobCreate, JobOut, JobPatchItem, JobState, JobUpdate, job_create_rows

router = APIRouter(prefix="/jobs", tags=["jobs"])
T = TypeVar("T")

_PATCH_LIST = TypeAdapter(list[JobPatchItem])
_JSON = "application/json"


_gc_lock = threading.Lock()
_gc_holders = 0
_gc_was_enabled = False


@contextmanager
def bulk_gc_pause() -> Iterator[None]:
    """Pause the cyclic GC while a bulk request runs (process-wide, reference counted across threads).

    A 5,000-item request allocates tens of thousands of short-lived objects; with the collector on, they
    get promoted while alive and trigger full (generation 2) collections over the whole application heap,
    measured at 150-200 ms per create+PATCH pair. Paused, they die by reference counting instead.
    """
    global _gc_holders, _gc_was_enabled
    with _gc_lock:
        _gc_holders += 1
        if _gc_holders == 1:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
    try:
        yield
    finally:
        with _gc_lock:
            _gc_holders -= 1
            if _gc_holders == 0 and _gc_was_enabled:
                gc.enable()


async def _raw_body(request: Request) -> bytes:
    return await request.body()


RawBody = Annotated[bytes, Depends(_raw_body)]


def _inline_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema with its `$defs` inlined, to embed under a request body in OpenAPI."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return resolve(defs[ref.removeprefix("#/$defs/")])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved


def _array_body(model: type[BaseModel]) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {_JSON: {"schema": {"type": "array", "items": _inline_schema(model)}}},
        }
    }


def body_validation_error(exc: ValidationError) -> RequestValidationError:
    """FastAPI's 422 for a body validated by hand. A raw-bytes `input` (an unparsable body) is shown as
    text with undecodable bytes replaced: FastAPI would otherwise fail to encode it and answer 500."""
    errors = []
    for err in exc.errors(include_url=False, include_context=False):
        item: dict[str, Any] = {**err, "loc": ("body", *err["loc"])}
        if isinstance(item.get("input"), bytes):
            item["input"] = item["input"][:200].decode("utf-8", errors="replace")
        errors.append(item)
    return RequestValidationError(errors)


def parse_body(adapter: TypeAdapter[T], raw: bytes) -> T:
    """Validate a JSON body; failures answer 422 in FastAPI's usual shape."""
    try:
        return adapter.validate_json(raw or b"null")
    except ValidationError as exc:
        raise body_validation_error(exc) from None


def parse_create(raw: bytes) -> list[dict[str, Any]]:
    try:
        return job_create_rows(raw)
    except ValidationError as exc:
        raise body_validation_error(exc) from None


Ordering = Literal["last_update", "-last_update", "id", "-id", "state", "-state", "workdir", "-workdir"]


async def job_filters(
    id: Annotated[list[LookupId] | None, Query()] = None,
    parent_id: Annotated[list[LookupId] | None, Query()] = None,
    app_id: LookupId | None = None,
    site_id: Annotated[list[LookupId] | None, Query()] = None,
    batch_job_id: LookupId | None = None,
    last_update_before: NaiveUTC | None = None,
    last_update_after: NaiveUTC | None = None,
    workdir__contains: str | None = None,
    state: Annotated[list[JobState] | None, Query()] = None,
    state__ne: JobState | None = None,
    tags: Annotated[list[str] | None, Query()] = None,
    pending_file_cleanup: bool | None = None,
) -> jobs.JobFilters:
    return jobs.JobFilters(
        ids=id,
        parent_ids=parent_id,
        app_id=app_id,
        site_ids=site_id,
        batch_job_id=batch_job_id,
        last_update_before=last_update_before,
        last_update_after=last_update_after,
        workdir_contains=workdir__contains,
        states=[str(s) for s in state] if state else None,
        state_ne=str(state__ne) if state__ne is not None else None,
        tags=parse_kv_filters(tags) or None,
        pending_file_cleanup=pending_file_cleanup,
    )


Filters = Annotated[jobs.JobFilters, Depends(job_filters)]


@router.get("/", responses={200: {"model": Page[JobOut]}})
def list_jobs(
    user: CurrentUser, db: DbDep, paging: PagingDep, filters: Filters, ordering: Ordering | None = None
) -> Response:
    with bulk_gc_pause():
        body = jobs.list_json(db, user.id, filters, ordering, paging.limit, paging.offset)
        db.rollback()
    return Response(body, media_type=_JSON)


@router.get("/{job_id}", responses={200: {"model": JobOut}})
def get_job(job_id: LookupId, user: CurrentUser, db: DbDep) -> Response:
    body = jobs.get_json(db, user.id, job_id)
    db.rollback()
    return Response(body, media_type=_JSON)


@router.post(
    "/",
    status_code=status.HTTP_201_CREATED,
    responses={201: {"model": list[JobOut]}},
    openapi_extra=_array_body(JobCreate),
)
def create_jobs(raw: RawBody, user: CurrentUser, db: DbDep) -> Response:
    with bulk_gc_pause():
        parsed = [parse_create(raw)]

        def create() -> str:
            # bulk_create completes the rows in place: a re-run (run_write) parses the body again.
            return jobs.bulk_create(db, user.id, parsed.pop() if parsed else parse_create(raw))

        body = run_write(db, create)
    return Response(body, status_code=status.HTTP_201_CREATED, media_type=_JSON)


@router.patch(
    "/",
    response_model=int,
    openapi_extra=_array_body(JobPatchItem),
)
def bulk_update_jobs(raw: RawBody, user: CurrentUser, db: DbDep, publisher: PublisherDep) -> int:
    with bulk_gc_pause():
        items = parse_body(_PATCH_LIST, raw)
        pairs = [(item.id, item) for item in items]
        updated, events = run_write(db, lambda: jobs.bulk_patch(db, user.id, pairs))
        del items
    publish_events(publisher, user.id, events)
    return updated


@router.put("/", response_model=int)
def update_jobs_by_query(
    body: Annotated[JobUpdate, Body()], user: CurrentUser, db: DbDep, publisher: PublisherDep, filters: Filters
) -> int:
    with bulk_gc_pause():
        updated, events = run_write(db, lambda: jobs.update_by_query(db, user.id, filters, body))
    publish_events(publisher, user.id, events)
    return updated


@router.put("/{job_id}", response_model=int)
def update_job(
    job_id: LookupId, body: Annotated[JobUpdate, Body()], user: CurrentUser, db: DbDep, publisher: PublisherDep
) -> int:
    updated, events = run_write(db, lambda: jobs.apply_updates(db, user.id, [(job_id, body)]))
    publish_events(publisher, user.id, events)
    return updated


KEPT_HEADER = "X-Balsam-Jobs-Kept"
KEPT_REASON_HEADER = "X-Balsam-Jobs-Kept-Reason"


def _deleted_response(result: jobs.DeleteResult) -> Response:
    """204 as upstream answers (spec §14.13); jobs the delete had to keep are named in headers, because the
    published client retries any 4xx for minutes instead of showing it."""
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    if result.kept:
        response.headers[KEPT_HEADER] = str(result.kept)
        response.headers[KEPT_REASON_HEADER] = (
            "held by a session (a launcher is running the job) or locked by another request; delete again once released"
        )
    return response


@router.delete("/{job_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
def delete_job(job_id: LookupId, user: CurrentUser, db: DbDep, publisher: PublisherDep) -> Response:
    result = run_write(db, lambda: jobs.delete_one(db, user.id, job_id))
    if result.deleted:
        publisher.publish(user.id, "bulk-delete", "job", {"ids": result.deleted})
    publish_events(publisher, user.id, result.events)
    return _deleted_response(result)


@router.delete("/", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
def delete_jobs(user: CurrentUser, db: DbDep, publisher: PublisherDep, filters: Filters) -> Response:
    result = run_write(db, lambda: jobs.delete_by_query(db, user.id, filters))
    publish_events(publisher, user.id, result.events)
    return _deleted_response(result)
