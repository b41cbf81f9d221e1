"""What each page shows, read through the API's crud functions and their ownership rules (spec §2).

Every function takes the signed-in user's id and reads only that user's rows: sites through
`crud.sites.owned`, jobs through `crud.jobs.conditions`, events through `crud.events.filtered`, and so on.
They return plain data for the templates; the routes (balsam.server.dashboard.routes) only wire them up.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from balsam.server.crud import apps, batch_jobs, events, jobs, sessions, sites, transfers
from balsam.server.crud.events import EventFilters
from balsam.server.crud.jobs import JobFilters
from balsam.server.dashboard import charts, liveness, states
from balsam.server.dashboard.filters import PAGE_SIZE, JobTableQuery
from balsam.server.db.tables import App, BatchJob, Job, LogEvent, Site

MAX_LISTED = 1000  # sites, apps, sessions and batch jobs on one page: far more than anyone runs
ACTIVE_BATCH_STATES = ["queued", "running"]
OVERVIEW_FAILURES = 8
FAILURES_LISTED = 100
EVENTS_LISTED = 10_000  # a job's history on its page (a restart loop can write many)
RELATIVES_LISTED = 200


@dataclass
class SiteCard:
    site: Site
    light: liveness.Liveness
    counts: dict[str, int]  # state -> jobs
    groups: dict[str, int]  # counter group -> jobs
    total: int


@dataclass
class Names:
    """Names of the owner's sites and apps, to label rows that carry only ids."""

    sites: dict[int, Site] = field(default_factory=dict)
    apps: dict[int, App] = field(default_factory=dict)

    def app(self, app_id: int) -> str:
        app = self.apps.get(app_id)
        return app.name if app is not None else f"app {app_id}"

    def site_of_app(self, app_id: int) -> Site | None:
        app = self.apps.get(app_id)
        return self.sites.get(app.site_id) if app is not None else None

    def site(self, site_id: int) -> str:
        site = self.sites.get(site_id)
        return site.name if site is not None else f"site {site_id}"


def names(db: Session, owner_id: int) -> Names:
    _, site_rows = sites.page(db, sites.owned(owner_id), MAX_LISTED, 0)
    _, app_rows = apps.page(db, apps.owned(owner_id), MAX_LISTED, 0)
    return Names({s.id: s for s in site_rows}, {a.id: a for a in app_rows})


def _group_counts(counts: dict[str, int]) -> dict[str, int]:
    grouped = dict.fromkeys(states.GROUPS, 0)
    for state, n in counts.items():
        grouped[states.GROUP_OF.get(state, "waiting")] += n
    return grouped


def overview(db: Session, owner_id: int, now: datetime, session_expiry_seconds: float) -> dict[str, Any]:
    """The overview: a card per site, sessions, active batch jobs, the day's throughput, the latest failures."""
    known = names(db, owner_id)
    per_site: dict[int, dict[str, int]] = defaultdict(dict)
    for site_id, state, n in jobs.counts_by_site_and_state(db, owner_id):
        per_site[site_id][state] = n
    cards = []
    for site in known.sites.values():
        counts = per_site.get(site.id, {})
        cards.append(
            SiteCard(
                site=site,
                light=liveness.site_liveness(site.last_refresh, now),
                counts={s: counts[s] for s in states.ALL_STATES if counts.get(s)},
                groups=_group_counts(counts),
                total=sum(counts.values()),
            )
        )
    everywhere: dict[str, int] = defaultdict(int)
    for counts in per_site.values():
        for state, n in counts.items():
            everywhere[state] += n
    totals = _group_counts(everywhere)
    session_rows = sessions.list_owned(db, owner_id, None)
    _, batch_rows = batch_jobs.page(
        db,
        batch_jobs.filtered(owner_id, batch_jobs.BatchJobFilters(states=ACTIVE_BATCH_STATES)),
        None,
        MAX_LISTED,
        0,
    )
    context = {
        "cards": cards,
        "totals": totals,
        "total_jobs": sum(totals.values()),
        "thresholds": liveness.thresholds_text(),
        "sessions": [
            {
                "session": s,
                "site": known.site(s.site_id),
                "age": now - s.heartbeat,
                "expiring": (now - s.heartbeat).total_seconds() > session_expiry_seconds,
            }
            for s in session_rows
        ],
        "session_expiry": timedelta(seconds=session_expiry_seconds),
        "batch_jobs": [{"batch_job": b, "site": known.site(b.site_id)} for b in batch_rows],
        "chart": throughput_chart(db, owner_id, charts.WINDOWS["day"], now),
        "failures": recent_failures(db, owner_id, OVERVIEW_FAILURES),
        "generated": now,
    }
    db.rollback()
    return context


def throughput_chart(db: Session, owner_id: int, window: charts.Window, now: datetime) -> charts.Chart:
    start, end = charts.window_bounds(window, now)
    rows = events.per_interval(db, owner_id, charts.SERIES, start, end, window.interval)
    return charts.build(window, start, {row.bucket: (row.finished, row.failed) for row in rows})


def throughput(db: Session, owner_id: int, now: datetime) -> dict[str, Any]:
    context = {"charts": [throughput_chart(db, owner_id, w, now) for w in charts.WINDOWS.values()]}
    db.rollback()
    return context


@dataclass
class Failure:
    event: LogEvent
    workdir: str
    job_state: str
    app_name: str
    site_name: str

    @property
    def message(self) -> str:
        """What the event says went wrong: the launcher's `error`, a server `message`, or the whole data."""
        data = self.event.data or {}
        for key in ("error", "message"):
            if data.get(key):
                return str(data[key])
        return ", ".join(f"{k}: {v}" for k, v in sorted(data.items()))

    @property
    def return_code(self) -> Any:
        return (self.event.data or {}).get("returncode")


def recent_failures(db: Session, owner_id: int, limit: int, site_id: int | None = None) -> list[Failure]:
    f = EventFilters(to_states=list(states.FAILURE_STATES))
    rows = events.recent_with_job(db, owner_id, f, limit, site_id=site_id)
    return [Failure(row[0], row.workdir, row.job_state, row.app_name, row.site_name) for row in rows]


def failures(db: Session, owner_id: int, site_id: int | None) -> dict[str, Any]:
    context = {
        "failures": recent_failures(db, owner_id, FAILURES_LISTED, site_id),
        "names": names(db, owner_id),
        "site_id": site_id,
        "limit": FAILURES_LISTED,
    }
    db.rollback()
    return context


def job_table(db: Session, owner_id: int, q: JobTableQuery) -> dict[str, Any]:
    known = names(db, owner_id)
    total, rows = (
        (0, []) if q.errors else jobs.list_rows(db, owner_id, q.job_filters(), q.ordering, PAGE_SIZE, q.offset)
    )
    db.rollback()
    return {
        "q": q,
        "jobs": rows,
        "total": total,
        "names": known,
        "page_size": PAGE_SIZE,
        "first": q.offset + 1 if rows else 0,
        "last": q.offset + len(rows),
        "prev_offset": max(q.offset - PAGE_SIZE, 0) if q.offset else None,
        "next_offset": q.offset + PAGE_SIZE if q.offset + PAGE_SIZE < total else None,
        "orderings": jobs.ORDERINGS,
    }


def job_page(db: Session, owner_id: int, job_id: int) -> dict[str, Any]:
    """One job (NotFound unless the user owns it), its relatives, transfer items and every event."""
    job: Job = jobs.get_row(db, owner_id, job_id)
    known = names(db, owner_id)
    parents: list[Job] = []
    if job.parent_ids:
        _, parents = jobs.list_rows(db, owner_id, JobFilters(ids=list(job.parent_ids)), None, RELATIVES_LISTED, 0)
    children_total, children = jobs.list_rows(db, owner_id, JobFilters(parent_ids=[job.id]), None, RELATIVES_LISTED, 0)
    _, items = transfers.page(
        db, transfers.filtered(owner_id, transfers.TransferFilters(job_ids=[job.id])), MAX_LISTED, 0
    )
    events_total, history = events.page(
        db, events.filtered(owner_id, EventFilters(job_ids=[job.id])), "timestamp", EVENTS_LISTED, 0
    )
    batch_job: BatchJob | None = None
    if job.batch_job_id is not None:
        found = batch_jobs.filtered(owner_id, batch_jobs.BatchJobFilters(ids=[job.batch_job_id]))
        _, rows = batch_jobs.page(db, found, None, 1, 0)
        batch_job = rows[0] if rows else None
    db.rollback()
    found_parents = {p.id for p in parents}
    return {
        "job": job,
        "app_name": known.app(job.app_id),
        "site": known.site_of_app(job.app_id),
        "parents": parents,
        "missing_parents": [p for p in job.parent_ids or [] if p not in found_parents],
        "children": children,
        "children_total": children_total,
        "transfers": items,
        "events": history,
        "events_total": events_total,
        "batch_job": batch_job,
        "names": known,
    }


def app_list(db: Session, owner_id: int) -> dict[str, Any]:
    known = names(db, owner_id)
    db.rollback()
    return {"apps": sorted(known.apps.values(), key=lambda a: (known.site(a.site_id), a.name)), "names": known}


def batch_job_list(db: Session, owner_id: int, state: str | None, offset: int) -> dict[str, Any]:
    known = names(db, owner_id)
    f = batch_jobs.BatchJobFilters(states=[state] if state else None)
    total, rows = batch_jobs.page(db, batch_jobs.filtered(owner_id, f), "-start_time", PAGE_SIZE, offset)
    db.rollback()
    return {
        "batch_jobs": rows,
        "total": total,
        "names": known,
        "state": state or "",
        "offset": offset,
        "first": offset + 1 if rows else 0,
        "last": offset + len(rows),
        "prev_offset": max(offset - PAGE_SIZE, 0) if offset else None,
        "next_offset": offset + PAGE_SIZE if offset + PAGE_SIZE < total else None,
        "batch_states": ["pending_submission", "queued", "running", "finished", "submit_failed", "pending_deletion"],
    }
