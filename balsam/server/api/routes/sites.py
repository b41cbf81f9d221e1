"""`/sites/` routes (spec §3): thin wrappers over balsam.server.crud.sites."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from balsam.server.api.deps import CurrentUser, DbDep, PagingDep, PublisherDep
from balsam.server.crud import sites
from balsam.server.crud.transactions import run_write
from balsam.server.pubsub import publish_events
from balsam.server.schemas.common import LookupId, NaiveUTC, Page
from balsam.server.schemas.sites import SiteCreate, SiteOut, SiteUpdate

router = APIRouter(prefix="/sites", tags=["sites"])


@router.get("/", response_model=Page[SiteOut])
def list_sites(
    user: CurrentUser,
    db: DbDep,
    paging: PagingDep,
    name: str | None = None,
    path: str | None = None,
    id: Annotated[list[LookupId] | None, Query()] = None,
    last_refresh_after: NaiveUTC | None = None,
) -> Page[SiteOut]:
    query = sites.filtered(user.id, name=name, path=path, ids=id, last_refresh_after=last_refresh_after)
    count, rows = sites.page(db, query, paging.limit, paging.offset)
    return Page[SiteOut](count=count, results=[SiteOut.model_validate(r) for r in rows])


@router.get("/{site_id}", response_model=SiteOut)
def get_site(site_id: LookupId, user: CurrentUser, db: DbDep) -> SiteOut:
    return SiteOut.model_validate(sites.get_owned(db, user.id, site_id))


@router.post("/", response_model=SiteOut, status_code=status.HTTP_201_CREATED)
def create_site(body: SiteCreate, user: CurrentUser, db: DbDep, publisher: PublisherDep) -> SiteOut:
    with db.begin():
        out = SiteOut.model_validate(sites.create(db, user.id, body))
    publisher.publish(user.id, "create", "site", out.model_dump(mode="json"))
    return out


@router.put("/{site_id}", response_model=SiteOut)
def update_site(site_id: LookupId, body: SiteUpdate, user: CurrentUser, db: DbDep, publisher: PublisherDep) -> SiteOut:
    with db.begin():
        site, changes = sites.update_fields(db, user.id, site_id, body)
        out = SiteOut.model_validate(site)
    sent = out.model_dump(mode="json", include={*changes, "id", "last_refresh"})
    publisher.publish(user.id, "update", "site", sent)
    return out


@router.delete("/{site_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
def delete_site(site_id: LookupId, user: CurrentUser, db: DbDep, publisher: PublisherDep) -> Response:
    released = run_write(db, lambda: sites.delete_owned(db, user.id, site_id))
    publisher.publish(user.id, "delete", "site", {"id": site_id})
    publish_events(publisher, user.id, released)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
