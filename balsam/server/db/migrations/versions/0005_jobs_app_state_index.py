"""jobs (app_id, state) index for the metrics' job counts

`/metrics` counts jobs per site and state with one GROUP BY app_id, state (balsam.server.metrics.database). An
index on (app_id, state) lets PostgreSQL answer it from the index (an index-only scan where the visibility map
allows) instead of reading every wide job row; bench/bench_metrics.py measures both. It replaces the index on
app_id alone, whose lookups it serves as well (app_id is its first column).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-10 12:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(op.f("ix_jobs_app_id_state"), "jobs", ["app_id", "state"], unique=False)
    op.drop_index(op.f("ix_jobs_app_id"), table_name="jobs")


def downgrade() -> None:
    op.create_index(op.f("ix_jobs_app_id"), "jobs", ["app_id"], unique=False)
    op.drop_index(op.f("ix_jobs_app_id_state"), table_name="jobs")
