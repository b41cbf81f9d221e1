"""Apps: ownership through the app's site (spec §2, §4)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from balsam.server.api.errors import BadRequest, NotFound
from balsam.server.clock import utcnow
from balsam.server.crud.job_states import lock_selected_jobs, release_children
from balsam.server.db.tables import App, Job, Site
from balsam.server.schemas.apps import AppCreate, AppUpdate
from balsam.server.schemas.common import like_escape

DUPLICATE_NAME = "An app with this site_id and name already exists"


def owned(owner_id: int) -> Select[tuple[App]]:
    return select(App).join(Site, App.site_id == Site.id).where(Site.owner_id == owner_id)


def filtered(
    owner_id: int,
    *,
    site_ids: list[int] | None = None,
    ids: list[int] | None = None,
    name: str | None = None,
    site_path: str | None = None,
    site_name: str | None = None,
) -> Select[tuple[App]]:
    query = owned(owner_id)
    if site_ids:
        query = query.where(App.site_id.in_(site_ids))
    if ids:
        query = query.where(App.id.in_(ids))
    if name is not None:
        query = query.where(App.name == name)
    if site_path is not None:
        query = query.where(Site.path.like(f"%{like_escape(site_path)}%", escape="\\"))
    if site_name is not None:
        query = query.where(Site.name == site_name)
    return query


def page(db: Session, query: Select[tuple[App]], limit: int, offset: int) -> tuple[int, list[App]]:
    count = db.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = list(db.scalars(query.order_by(App.id).limit(limit).offset(offset))) if limit else []
    return count, rows


def get_owned(db: Session, owner_id: int, app_id: int, *, lock: bool = False) -> App:
    query = owned(owner_id).where(App.id == app_id)
    if lock:
        query = query.with_for_update(of=App)
    app = db.scalars(query).first()
    if app is None:
        raise NotFound()
    return app


def _require_site(db: Session, owner_id: int, site_id: int) -> None:
    found = db.execute(select(Site.id).where(Site.id == site_id, Site.owner_id == owner_id)).first()
    if found is None:
        raise NotFound()


def create(db: Session, owner_id: int, body: AppCreate) -> App:
    _require_site(db, owner_id, body.site_id)
    row = db.execute(
        insert(App)
        .values(**body.model_dump(mode="json"))
        .on_conflict_do_nothing(index_elements=[App.site_id, App.name])
        .returning(App.id)
    ).first()
    if row is None:
        raise BadRequest(DUPLICATE_NAME)
    return get_owned(db, owner_id, row.id)


def update_fields(db: Session, owner_id: int, app_id: int, body: AppUpdate) -> tuple[App, dict[str, Any]]:
    app = get_owned(db, owner_id, app_id, lock=True)
    changes = body.model_dump(mode="json", include=body.model_fields_set)
    target_site = changes.get("site_id", app.site_id)
    if "site_id" in changes:
        _require_site(db, owner_id, target_site)
    target_name = changes.get("name", app.name)
    if (target_site, target_name) != (app.site_id, app.name):
        clash = db.execute(
            select(App.id).where(App.site_id == target_site, App.name == target_name, App.id != app_id)
        ).first()
        if clash is not None:
            raise BadRequest(DUPLICATE_NAME)
    if changes:
        db.execute(update(App).where(App.id == app_id).values(**changes))
        db.refresh(app)
    return app, changes


def delete_owned(db: Session, owner_id: int, app_id: int) -> list[dict[str, Any]]:
    """Delete the app and its jobs; release jobs of other apps that waited on them (returns their events)."""
    get_owned(db, owner_id, app_id, lock=True)
    doomed = lock_selected_jobs(db, select(Job.id).where(Job.app_id == app_id))
    db.execute(delete(App).where(App.id == app_id))
    return release_children(db, doomed, utcnow())
