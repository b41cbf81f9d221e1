"""log_events: one index on (to_state, timestamp) for the dashboard's throughput and failure views

The dashboard counts the events that reached JOB_FINISHED or a failure state per interval over the last hour,
day and week, and lists the newest failures. Both read a few states within a time range, which the composite
index answers as index ranges (with `job_id` included, for the ownership join, without visiting the table).
Leading with `to_state`, it also serves every query the single-column `ix_log_events_to_state` served
(`GET /events/?to_state=`), which it replaces, so event inserts maintain no more indexes than before.

The build blocks writes to log_events while it runs (2 to 3 s per million events measured on a 2-core machine);
upgrade with the servers stopped or at a quiet moment (docs/upgrade.md).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 12:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_log_events_to_state_timestamp",
        "log_events",
        ["to_state", "timestamp"],
        unique=False,
        postgresql_include=["job_id"],
    )
    op.drop_index(op.f("ix_log_events_to_state"), table_name="log_events")


def downgrade() -> None:
    op.create_index(op.f("ix_log_events_to_state"), "log_events", ["to_state"], unique=False)
    op.drop_index("ix_log_events_to_state_timestamp", table_name="log_events")
