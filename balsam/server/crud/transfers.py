"""Transfer items (spec §6): reads, updates, and the job advancement that follows an update.

Lock order matches the job writers: the owning jobs first (by id), then the items (by id). Then the
items change, and READY/POSTPROCESSED jobs whose items of that direction are all `done` advance
(`job_states.advance_after_transfers`), which also clears the session lock and releases children.

Item state changes are not checked, as upstream (spec §6, §14.13): the transfer service mirrors whatever
state its transfer task reports, and a 4xx would only make the client retry for minutes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, func, select, text
from sqlalchemy.orm import Session

from balsam.server.api.errors import BadRequest, NotFound
from balsam.server.clock import utcnow
from balsam.server.crud.job_json import bigint_array
from balsam.server.crud.job_states import advance_after_transfers, lock_jobs
from balsam.server.db.tables import App, Job, Site, TransferItem
from balsam.server.schemas.common import MAX_ITEMS_PER_BULK_OP
from balsam.server.schemas.transfers import TransferItemUpdate

NOT_FOUND_SOME = "Some TransferItems not found"


def owned(owner_id: int) -> Select[tuple[TransferItem]]:
    return (
        select(TransferItem)
        .join(Job, TransferItem.job_id == Job.id)
        .join(App, Job.app_id == App.id)
        .join(Site, App.site_id == Site.id)
        .where(Site.owner_id == owner_id)
    )


@dataclass
class TransferFilters:
    ids: list[int] | None = None
    site_id: int | None = None
    job_ids: list[int] | None = None
    states: list[str] | None = None
    direction: str | None = None
    job_state: str | None = None
    tags: dict[str, str] | None = None


def filtered(owner_id: int, f: TransferFilters) -> Select[tuple[TransferItem]]:
    query = owned(owner_id)
    terms: list[ColumnElement[bool]] = []
    if f.ids:
        terms.append(TransferItem.id == func.any(bigint_array(f.ids)))
    if f.site_id is not None:
        terms.append(App.site_id == f.site_id)
    if f.job_ids:
        terms.append(TransferItem.job_id == func.any(bigint_array(f.job_ids)))
    if f.states:
        terms.append(TransferItem.state.in_(f.states))
    if f.direction is not None:
        terms.append(TransferItem.direction == f.direction)
    if f.job_state is not None:
        terms.append(Job.state == f.job_state)
    if f.tags:
        terms.append(Job.tags.contains(f.tags))
    return query.where(*terms)


def page(db: Session, query: Select[tuple[TransferItem]], limit: int, offset: int) -> tuple[int, list[TransferItem]]:
    count = db.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = list(db.scalars(query.order_by(TransferItem.id).limit(limit).offset(offset))) if limit else []
    return count, rows


def get_owned(db: Session, owner_id: int, transfer_id: int) -> TransferItem:
    item = db.scalars(owned(owner_id).where(TransferItem.id == transfer_id)).first()
    if item is None:
        raise NotFound()
    return item


def update_items(
    db: Session, owner_id: int, updates: Sequence[tuple[int, TransferItemUpdate]], *, single: bool = False
) -> tuple[list[TransferItem], list[dict[str, Any]]]:
    """Apply each item's own keys; returns (updated items by id, job events written).

    An id named twice keeps its last item only, as upstream does (a 400 would make the client retry).
    """
    if len(updates) > MAX_ITEMS_PER_BULK_OP:
        raise BadRequest(f"Cannot bulk-update more than {MAX_ITEMS_PER_BULK_OP} in a single API call.")
    latest = dict(updates)
    ids = sorted(latest)
    if not ids:
        return [], []
    job_of = {
        r[0]: r[1]
        for r in db.execute(
            select(TransferItem.id, TransferItem.job_id)
            .join(Job, TransferItem.job_id == Job.id)
            .join(App, Job.app_id == App.id)
            .join(Site, App.site_id == Site.id)
            .where(Site.owner_id == owner_id, TransferItem.id == func.any(bigint_array(ids)))
        )
    }
    if len(job_of) != len(ids):
        if single:
            raise NotFound()
        raise BadRequest(NOT_FOUND_SOME)
    now = utcnow()
    lock_jobs(db, job_of.values())
    locked = db.scalars(
        text("SELECT id FROM transfer_items WHERE id = ANY(:ids) ORDER BY id FOR UPDATE"), {"ids": ids}
    ).all()
    if len(locked) != len(ids):  # deleted together with its job meanwhile
        raise BadRequest(NOT_FOUND_SOME)
    payload = []
    for item_id, update in latest.items():
        values = update.model_dump(mode="json", include=update.model_fields_set)
        values["id"] = item_id
        payload.append(values)
    db.execute(
        text(
            "UPDATE transfer_items SET"
            " state = CASE WHEN jsonb_exists(e.p, 'state') THEN e.p->>'state' ELSE transfer_items.state END,"
            " task_id = CASE WHEN jsonb_exists(e.p, 'task_id') THEN e.p->>'task_id' ELSE transfer_items.task_id END,"
            " transfer_info = CASE WHEN jsonb_exists(e.p, 'transfer_info') THEN e.p->'transfer_info'"
            " ELSE transfer_items.transfer_info END"
            " FROM jsonb_array_elements(CAST(:payload AS jsonb)) AS e(p)"
            " WHERE transfer_items.id = CAST(e.p->>'id' AS bigint)"
        ),
        {"payload": json.dumps(payload)},
    )
    events = advance_after_transfers(db, job_of.values(), now)
    db.expire_all()
    items = list(
        db.scalars(select(TransferItem).where(TransferItem.id == func.any(bigint_array(ids))).order_by(TransferItem.id))
    )
    return items, events
