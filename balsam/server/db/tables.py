"""SQLAlchemy 2 tables for every resource of the API.

Ownership runs through `sites.owner_id` (spec §2). Timestamps are stored as naive UTC (`timestamp without
time zone`), which is what the API emits. Indexes follow the queries the API runs: job filters, acquire,
the session sweep and the event log.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    func,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, column_property, mapped_column

# Deterministic constraint names keep Alembic autogenerate diffs empty and migrations readable.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

_EMPTY_OBJECT = text("'{}'::jsonb")
_EMPTY_ARRAY_JSON = text("'[]'::jsonb")
_NOW = text("timezone('utc', now())")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(256), unique=True)
    # NULL for accounts created through OAuth: they cannot log in with a password.
    hashed_password: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, server_default=_NOW)


class DeviceCodeAttempt(Base):
    """An OAuth device-flow login in progress (spec §1.4)."""

    __tablename__ = "device_code_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    device_code: Mapped[str] = mapped_column(String(128), unique=True)
    user_code: Mapped[str] = mapped_column(String(16), unique=True)
    scope: Mapped[str] = mapped_column(Text, server_default="")
    expiration: Mapped[datetime] = mapped_column(DateTime)
    denied: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))


class AuthState(Base):
    """A single-use OAuth `state` value issued with a redirect to the provider."""

    __tablename__ = "auth_states"

    state: Mapped[str] = mapped_column(String(256), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, server_default=_NOW)


class LoginThrottle(Base):
    """Recent failed password logins per username (`user:<name>`) and per client address (`addr:<ip>`), shared
    by every worker and host (balsam.server.auth.throttle). UNLOGGED: the counters are worth nothing after a
    crash (PostgreSQL empties the table then), so they skip the write-ahead log."""

    __tablename__ = "login_throttle"
    __table_args__ = {"prefixes": ["UNLOGGED"]}

    key: Mapped[str] = mapped_column(Text, primary_key=True)
    window_start: Mapped[datetime] = mapped_column(DateTime)
    # Short keyed digests of the distinct (username, password) pairs that failed in this window.
    fingerprints: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default=text("'{}'::text[]"))
    locked_until: Mapped[datetime | None] = mapped_column(DateTime)


class Site(Base):
    __tablename__ = "sites"
    __table_args__ = (UniqueConstraint("owner_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    path: Mapped[str] = mapped_column(Text)
    globus_endpoint_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    backfill_windows: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=_EMPTY_OBJECT)
    queued_jobs: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=_EMPTY_OBJECT)
    optional_batch_job_params: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=_EMPTY_OBJECT)
    allowed_projects: Mapped[list[Any]] = mapped_column(JSONB, server_default=_EMPTY_ARRAY_JSON)
    allowed_queues: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=_EMPTY_OBJECT)
    transfer_locations: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=_EMPTY_OBJECT)
    last_refresh: Mapped[datetime] = mapped_column(DateTime, server_default=_NOW)
    creation_date: Mapped[datetime] = mapped_column(DateTime, server_default=_NOW)


class App(Base):
    __tablename__ = "apps"
    __table_args__ = (UniqueConstraint("site_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(128))
    serialized_class: Mapped[str] = mapped_column(Text, server_default="")
    source_code: Mapped[str] = mapped_column(Text, server_default="")
    description: Mapped[str] = mapped_column(Text, server_default="")
    parameters: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=_EMPTY_OBJECT)
    transfers: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=_EMPTY_OBJECT)


class BatchJob(Base):
    __tablename__ = "batch_jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    scheduler_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    project: Mapped[str] = mapped_column(Text)
    queue: Mapped[str] = mapped_column(Text)
    num_nodes: Mapped[int] = mapped_column(Integer)
    wall_time_min: Mapped[int] = mapped_column(Integer)
    job_mode: Mapped[str] = mapped_column(String(16))
    optional_params: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=_EMPTY_OBJECT)
    filter_tags: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=_EMPTY_OBJECT)
    partitions: Mapped[list[Any] | None] = mapped_column(JSONB)
    state: Mapped[str] = mapped_column(String(32), index=True, server_default="pending_submission")
    status_info: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=_EMPTY_OBJECT)
    start_time: Mapped[datetime | None] = mapped_column(DateTime)
    end_time: Mapped[datetime | None] = mapped_column(DateTime)


class Session(Base):
    """A launcher's lease on the jobs it acquires (spec §8)."""

    __tablename__ = "sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    batch_job_id: Mapped[int | None] = mapped_column(ForeignKey("batch_jobs.id", ondelete="SET NULL"), index=True)
    heartbeat: Mapped[datetime] = mapped_column(DateTime, server_default=_NOW, index=True)


class JobLease(Base):
    """Which session holds a job (spec §8), one narrow row per held job.

    Kept out of `jobs` so that acquiring and releasing jobs insert and delete these rows instead of rewriting
    the wide `jobs` rows and every one of their indexes. Deleting the job or the session deletes the lease:
    not by foreign keys, whose per-row checks cost an acquire time to prove what its row locks already
    guarantee, but by statement triggers on `jobs` and `sessions` (migration 0006).
    """

    __tablename__ = "job_leases"

    job_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    session_id: Mapped[int] = mapped_column(Integer, index=True)


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        # No checks on the sizes: upstream stores any integer there (migration 0002); acquire guards its
        # footprint arithmetic instead.
        Index("ix_jobs_tags", "tags", postgresql_using="gin", postgresql_ops={"tags": "jsonb_path_ops"}),
        Index("ix_jobs_parent_ids", "parent_ids", postgresql_using="gin"),
        # Acquire scans the jobs of a few apps in a few states; app_id first, so it also serves the FK.
        Index("ix_jobs_acquirable", "app_id", "state"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"))
    # The lock holder, read from `job_leases` (not a column of `jobs`): for ORM reads and filters only.
    session_id: Mapped[int | None] = column_property(
        select(JobLease.session_id)
        .where(JobLease.job_id == id)
        .correlate_except(JobLease)
        .scalar_subquery()
        .label("session_id")
    )
    batch_job_id: Mapped[int | None] = mapped_column(ForeignKey("batch_jobs.id", ondelete="SET NULL"), index=True)
    workdir: Mapped[str] = mapped_column(Text)
    tags: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=_EMPTY_OBJECT)
    # No FK: a deleted parent keeps its id here; child release treats a missing parent as finished.
    parent_ids: Mapped[list[int]] = mapped_column(ARRAY(BigInteger), server_default=text("'{}'::bigint[]"))
    state: Mapped[str] = mapped_column(String(32), index=True)
    last_update: Mapped[datetime] = mapped_column(DateTime, server_default=_NOW, index=True)
    serialized_parameters: Mapped[str] = mapped_column(Text, server_default="")
    serialized_return_value: Mapped[str] = mapped_column(Text, server_default="")
    serialized_exception: Mapped[str] = mapped_column(Text, server_default="")
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=_EMPTY_OBJECT)
    return_code: Mapped[int | None] = mapped_column(Integer)
    pending_file_cleanup: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    num_nodes: Mapped[int] = mapped_column(Integer, server_default="1")
    ranks_per_node: Mapped[int] = mapped_column(Integer, server_default="1")
    threads_per_rank: Mapped[int] = mapped_column(Integer, server_default="1")
    threads_per_core: Mapped[int] = mapped_column(Integer, server_default="1")
    gpus_per_rank: Mapped[float] = mapped_column(Float, server_default="0")
    node_packing_count: Mapped[int] = mapped_column(Integer, server_default="1")
    wall_time_min: Mapped[int] = mapped_column(Integer, server_default="0")
    launch_params: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=_EMPTY_OBJECT)


class TransferItem(Base):
    __tablename__ = "transfer_items"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    direction: Mapped[str] = mapped_column(String(8))
    local_path: Mapped[str] = mapped_column(Text)
    remote_path: Mapped[str] = mapped_column(Text)
    location_alias: Mapped[str] = mapped_column(Text)
    recursive: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    state: Mapped[str] = mapped_column(String(32), index=True)
    task_id: Mapped[str] = mapped_column(Text, server_default="")
    transfer_info: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=_EMPTY_OBJECT)


class LogEvent(Base):
    __tablename__ = "log_events"
    __table_args__ = (
        # A few states within a time range: the dashboard's throughput charts and failure list (migration 0005).
        Index("ix_log_events_to_state_timestamp", "to_state", "timestamp", postgresql_include=["job_id"]),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    timestamp: Mapped[datetime] = mapped_column(DateTime, index=True)
    from_state: Mapped[str] = mapped_column(String(32))
    to_state: Mapped[str] = mapped_column(String(32))
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=_EMPTY_OBJECT)


__all__ = [
    "App",
    "AuthState",
    "Base",
    "BatchJob",
    "DeviceCodeAttempt",
    "Job",
    "JobLease",
    "LogEvent",
    "LoginThrottle",
    "Session",
    "Site",
    "TransferItem",
    "User",
    "func",
]
