"""`balsam server prune`: retention for job events and finished jobs (balsam.server.ops.prune)."""

from __future__ import annotations

import argparse
import sys
from datetime import timedelta
from typing import TextIO

from sqlalchemy import create_engine

from balsam.server.clock import utcnow
from balsam.server.conf import load_settings
from balsam.server.db.engine import admin_connect_args
from balsam.server.ops.prune import PRUNABLE_STATES, Counts, Plan, PruneBusy, count, prune


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "prune",
        help="delete old job events and, optionally, old finished jobs (safe while the API serves)",
        description="Deletes log events older than --events-older-than days and, with --jobs-older-than, jobs in the "
        "--job-state states whose last change is older than that, together with their events and transfer items. "
        "Works in short batches that skip rows the API is using; a job that a child in AWAITING_PARENTS still "
        "waits for is kept. One prune at a time per database.",
    )
    parser.add_argument("--events-older-than", type=float, metavar="DAYS", help="delete log events older than DAYS")
    parser.add_argument(
        "--jobs-older-than",
        type=float,
        metavar="DAYS",
        help="delete jobs (see --job-state) last changed before DAYS ago",
    )
    parser.add_argument(
        "--job-state",
        action="append",
        choices=PRUNABLE_STATES,
        help="a state of the jobs to delete (repeatable; default JOB_FINISHED)",
    )
    parser.add_argument(
        "--batch-size", type=int, default=1000, help="events per transaction (jobs: a tenth); default 1000"
    )
    parser.add_argument("--dry-run", action="store_true", help="print what would be deleted and delete nothing")
    parser.set_defaults(func=run)


def _number(n: int) -> str:
    return f"{n:,}"


def _summary(counts: Counts, plan: Plan, verb: str) -> list[str]:
    lines = []
    if plan.jobs_before is not None:
        lines.append(
            f"{verb} {_number(counts.jobs)} jobs ({', '.join(plan.job_states)}) last changed before "
            f"{plan.jobs_before:%Y-%m-%d %H:%M} UTC, with their {_number(counts.job_events)} events and "
            f"{_number(counts.transfer_items)} transfer items"
        )
    if plan.events_before is not None:
        lines.append(f"{verb} {_number(counts.events)} events from before {plan.events_before:%Y-%m-%d %H:%M} UTC")
    return lines


class _Progress:
    """One line rewritten in place, only on a terminal."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.shown = False

    def __call__(self, counts: Counts) -> None:
        if not self.out.isatty():
            return
        self.out.write(
            f"\rpruning: {_number(counts.jobs)} jobs ({_number(counts.job_events)} events, "
            f"{_number(counts.transfer_items)} transfer items), {_number(counts.events)} older events deleted"
        )
        self.out.flush()
        self.shown = True

    def done(self) -> None:
        if self.shown:
            self.out.write("\n")


def run(args: argparse.Namespace) -> int:
    if args.events_older_than is None and args.jobs_older_than is None:
        print("balsam: prune: nothing to do; pass --events-older-than and/or --jobs-older-than", file=sys.stderr)
        return 2
    if any(d is not None and d < 0 for d in (args.events_older_than, args.jobs_older_than)) or args.batch_size < 1:
        print("balsam: prune: days must not be negative and --batch-size must be positive", file=sys.stderr)
        return 2
    settings = load_settings()
    plan = Plan.from_days(
        args.events_older_than, args.jobs_older_than, args.job_state or ["JOB_FINISHED"], args.batch_size, utcnow()
    )
    # PostgreSQL directly when BALSAM_DATABASE_DIRECT_URL is set; the prune also works through PgBouncer.
    engine = create_engine(settings.direct_sqlalchemy_url, connect_args=admin_connect_args(settings))
    try:
        if args.dry_run:
            found = count(engine, plan)
            for line in _summary(found, plan, "would delete"):
                print(line)
            if found.kept_parents:
                print(
                    f"would keep {_number(found.kept_parents)} such jobs: jobs in AWAITING_PARENTS still wait for them"
                )
            return 0
        progress = _Progress(sys.stdout)
        try:
            done = prune(
                engine,
                plan,
                progress=progress,
                # Expired login throttle counters go too (balsam.server.auth.throttle).
                throttle_window=timedelta(seconds=settings.auth.login_failure_window),
            )
        except PruneBusy as exc:
            print(f"balsam: prune: {exc}; nothing done", file=sys.stderr)
            return 0
        finally:
            progress.done()
        for line in _summary(done, plan, "deleted"):
            print(line)
        return 0
    finally:
        engine.dispose()
