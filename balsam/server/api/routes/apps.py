"""`/apps/` routes (spec §4): thin wrappers over balsam.server.crud.apps."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from balsam.server.api.deps import CurrentUser, DbDep, PagingDep, PublisherDep
from balsam.server.crud import apps
from balsam.server.crud.transactions import run_write
from balsam.server.pubsub import publish_events
from balsam.server.schemas.apps import AppCreate, AppOut, AppUpdate
from balsam.server.schemas.common import LookupId, Page

router = APIRouter(prefix="/apps", tags=["apps"])


@router.get("/", response_model=Page[AppOut])
def list_apps(
    user: CurrentUser,
    db: DbDep,
    paging: PagingDep,
    site_id: Annotated[list[LookupId] | None, Query()] = None,
    id: Annotated[list[LookupId] | None, Query()] = None,
    name: str | None = None,
    site_path: str | None = None,
    site_name: str | None = None,
) -> Page[AppOut]:
    query = apps.filtered(user.id, site_ids=site_id, ids=id, name=name, site_path=site_path, site_name=site_name)
    count, rows = apps.page(db, query, paging.limit, paging.offset)
    return Page[AppOut](count=count, results=[AppOut.model_validate(r) for r in rows])


@router.get("/{app_id}", response_model=AppOut)
def get_app(app_id: LookupId, user: CurrentUser, db: DbDep) -> AppOut:
    return AppOut.model_validate(apps.get_owned(db, user.id, app_id))


@router.post("/", response_model=AppOut, status_code=status.HTTP_201_CREATED)
def create_app(body: AppCreate, user: CurrentUser, db: DbDep, publisher: PublisherDep) -> AppOut:
    with db.begin():
        out = AppOut.model_validate(apps.create(db, user.id, body))
    publisher.publish(user.id, "create", "app", out.model_dump(mode="json"))
    return out


@router.put("/{app_id}", response_model=AppOut)
def update_app(app_id: LookupId, body: AppUpdate, user: CurrentUser, db: DbDep, publisher: PublisherDep) -> AppOut:
    with db.begin():
        app, changes = apps.update_fields(db, user.id, app_id, body)
        out = AppOut.model_validate(app)
    publisher.publish(user.id, "update", "app", out.model_dump(mode="json", include={*changes, "id"}))
    return out


@router.delete("/{app_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
def delete_app(app_id: LookupId, user: CurrentUser, db: DbDep, publisher: PublisherDep) -> Response:
    released = run_write(db, lambda: apps.delete_owned(db, user.id, app_id))
    publisher.publish(user.id, "delete", "app", {"id": app_id})
    publish_events(publisher, user.id, released)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
