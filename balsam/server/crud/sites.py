"""Sites: ownership-scoped reads and writes (spec §2, §3)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from balsam.server.api.errors import BadRequest, NotFound
from balsam.server.clock import utcnow
from balsam.server.crud.job_states import lock_selected_jobs, release_children
from balsam.server.db.tables import App, Job, Site
from balsam.server.schemas.common import like_escape
from balsam.server.schemas.sites import SiteCreate, SiteUpdate

DUPLICATE_NAME = "A site with this name already exists"


def owned(owner_id: int) -> Select[tuple[Site]]:
    return select(Site).where(Site.owner_id == owner_id)


def filtered(
    owner_id: int,
    *,
    name: str | None = None,
    path: str | None = None,
    ids: list[int] | None = None,
    last_refresh_after: datetime | None = None,
) -> Select[tuple[Site]]:
    query = owned(owner_id)
    if name is not None:
        query = query.where(Site.name == name)
    if path is not None:
        query = query.where(Site.path.like(f"%{like_escape(path)}%", escape="\\"))
    if ids:
        query = query.where(Site.id.in_(ids))
    if last_refresh_after is not None:
        query = query.where(Site.last_refresh >= last_refresh_after)
    return query


def page(db: Session, query: Select[tuple[Site]], limit: int, offset: int) -> tuple[int, list[Site]]:
    count = db.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = list(db.scalars(query.order_by(Site.id).limit(limit).offset(offset))) if limit else []
    return count, rows


def get_owned(db: Session, owner_id: int, site_id: int, *, lock: bool = False) -> Site:
    query = owned(owner_id).where(Site.id == site_id)
    if lock:
        query = query.with_for_update()
    site = db.scalars(query).first()
    if site is None:
        raise NotFound()
    return site


def create(db: Session, owner_id: int, body: SiteCreate) -> Site:
    now = utcnow()
    values = body.model_dump(mode="python")
    row = db.execute(
        insert(Site)
        .values(owner_id=owner_id, last_refresh=now, creation_date=now, **values)
        .on_conflict_do_nothing(index_elements=[Site.owner_id, Site.name])
        .returning(Site.id)
    ).first()
    if row is None:
        raise BadRequest(DUPLICATE_NAME)
    return get_owned(db, owner_id, row.id)


def update_fields(db: Session, owner_id: int, site_id: int, body: SiteUpdate) -> tuple[Site, dict[str, Any]]:
    """Apply the fields sent; every update is also the site's heartbeat (last_refresh = now)."""
    site = get_owned(db, owner_id, site_id, lock=True)
    changes = body.model_dump(mode="python", include=body.model_fields_set)
    if "name" in changes and changes["name"] != site.name:
        clash = db.execute(
            select(Site.id).where(Site.owner_id == owner_id, Site.name == changes["name"], Site.id != site_id)
        ).first()
        if clash is not None:
            raise BadRequest(DUPLICATE_NAME)
    changes["last_refresh"] = utcnow()
    db.execute(update(Site).where(Site.id == site_id).values(**changes))
    db.refresh(site)
    return site, changes


def delete_owned(db: Session, owner_id: int, site_id: int) -> list[dict[str, Any]]:
    """Delete the site and, by cascade, its apps, jobs, batch jobs and sessions.

    Jobs elsewhere that waited on the deleted jobs are released (a deleted parent counts as finished, see
    docs/job-states.md); returns the events of those releases.
    """
    get_owned(db, owner_id, site_id, lock=True)
    doomed = lock_selected_jobs(db, select(Job.id).join(App, Job.app_id == App.id).where(App.site_id == site_id))
    db.execute(delete(Site).where(Site.id == site_id))
    return release_children(db, doomed, utcnow())
