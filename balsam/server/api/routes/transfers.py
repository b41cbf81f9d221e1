"""`/transfers/` routes (spec §6): thin wrappers over balsam.server.crud.transfers."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from balsam.server.api.deps import CurrentUser, DbDep, PagingDep, PublisherDep
from balsam.server.crud import transfers
from balsam.server.crud.transactions import run_write
from balsam.server.pubsub import publish_events
from balsam.server.schemas.common import LookupId, Page, parse_kv_filters
from balsam.server.schemas.transfers import (
    TransferDirection,
    TransferItemOut,
    TransferItemPatch,
    TransferItemUpdate,
    TransferState,
)

router = APIRouter(prefix="/transfers", tags=["transfers"])


@router.get("/", response_model=Page[TransferItemOut])
def list_transfers(
    user: CurrentUser,
    db: DbDep,
    paging: PagingDep,
    id: Annotated[list[LookupId] | None, Query()] = None,
    site_id: LookupId | None = None,
    job_id: Annotated[list[LookupId] | None, Query()] = None,
    state: Annotated[list[TransferState] | None, Query()] = None,
    direction: TransferDirection | None = None,
    job_state: str | None = None,
    tags: Annotated[list[str] | None, Query()] = None,
) -> Page[TransferItemOut]:
    f = transfers.TransferFilters(
        ids=id,
        site_id=site_id,
        job_ids=job_id,
        states=list(state) if state else None,
        direction=direction,
        job_state=job_state,
        tags=parse_kv_filters(tags) or None,
    )
    count, rows = transfers.page(db, transfers.filtered(user.id, f), paging.limit, paging.offset)
    db.rollback()
    return Page[TransferItemOut](count=count, results=[TransferItemOut.model_validate(r) for r in rows])


@router.get("/{transfer_id}", response_model=TransferItemOut)
def get_transfer(transfer_id: LookupId, user: CurrentUser, db: DbDep) -> TransferItemOut:
    out = TransferItemOut.model_validate(transfers.get_owned(db, user.id, transfer_id))
    db.rollback()
    return out


@router.put("/{transfer_id}", response_model=TransferItemOut)
def update_transfer(
    transfer_id: LookupId, body: TransferItemUpdate, user: CurrentUser, db: DbDep, publisher: PublisherDep
) -> TransferItemOut:
    items, events = run_write(db, lambda: transfers.update_items(db, user.id, [(transfer_id, body)], single=True))
    out = TransferItemOut.model_validate(items[0])
    publish_events(publisher, user.id, events)
    return out


@router.patch("/", response_model=list[TransferItemOut])
def bulk_update_transfers(
    body: list[TransferItemPatch], user: CurrentUser, db: DbDep, publisher: PublisherDep
) -> list[TransferItemOut]:
    pairs = [(item.id, item) for item in body]
    items, events = run_write(db, lambda: transfers.update_items(db, user.id, pairs))
    out = [TransferItemOut.model_validate(i) for i in items]
    publish_events(publisher, user.id, events)
    return out
