"""job leases move out of jobs into job_leases

Acquiring a job used to set `jobs.session_id`, which rewrote the wide job row and inserted a new entry into
every one of its nine indexes; releasing it did the same again. The lease is now a row of its own in the
narrow `job_leases(job_id, session_id)`, so acquire inserts leases and a release deletes them.

The upgrade carries over every lease held at upgrade time (jobs with a `session_id`), in the same transaction
as the schema change and under a lock on `jobs`, so no acquire or release can slip between the copy and the
drop. Code of the previous release cannot run against the new schema: stop the servers, migrate, start them
(docs/upgrade.md). The downgrade copies the leases back into `jobs.session_id`.

Indexes: `ix_jobs_session_id` goes with the column; `ix_jobs_acquirable` (app_id, state) is no longer partial on
`session_id IS NULL` and, leading with app_id, replaces `ix_jobs_app_id` too (seven indexes on `jobs`, was nine).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Taken first, so that the copy below and the drop of the column see the same held jobs, and so that this
    # transaction never has to upgrade a weaker lock (a deadlock risk with live servers).
    op.execute("LOCK TABLE jobs, sessions IN ACCESS EXCLUSIVE MODE")
    op.create_table(
        "job_leases",
        sa.Column("job_id", sa.BigInteger(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_job_leases_job_id_jobs"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["session_id"], ["sessions.id"], name=op.f("fk_job_leases_session_id_sessions"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("job_id", name=op.f("pk_job_leases")),
    )
    op.execute(
        "INSERT INTO job_leases (job_id, session_id) SELECT id, session_id FROM jobs WHERE session_id IS NOT NULL"
        " ORDER BY id"
    )
    op.create_index(op.f("ix_job_leases_session_id"), "job_leases", ["session_id"], unique=False)
    op.drop_index("ix_jobs_acquirable", table_name="jobs", postgresql_where=sa.text("session_id IS NULL"))
    op.drop_index(op.f("ix_jobs_session_id"), table_name="jobs")
    op.drop_index(op.f("ix_jobs_app_id"), table_name="jobs")
    op.drop_constraint(op.f("fk_jobs_session_id_sessions"), "jobs", type_="foreignkey")
    op.drop_column("jobs", "session_id")
    op.create_index("ix_jobs_acquirable", "jobs", ["app_id", "state"], unique=False)


def downgrade() -> None:
    op.execute("LOCK TABLE jobs, sessions, job_leases IN ACCESS EXCLUSIVE MODE")
    op.add_column("jobs", sa.Column("session_id", sa.Integer(), nullable=True))
    op.execute("UPDATE jobs SET session_id = l.session_id FROM job_leases l WHERE l.job_id = jobs.id")
    op.create_foreign_key(
        op.f("fk_jobs_session_id_sessions"), "jobs", "sessions", ["session_id"], ["id"], ondelete="SET NULL"
    )
    op.drop_index("ix_jobs_acquirable", table_name="jobs")
    op.create_index(
        "ix_jobs_acquirable", "jobs", ["app_id", "state"], unique=False, postgresql_where=sa.text("session_id IS NULL")
    )
    op.create_index(op.f("ix_jobs_app_id"), "jobs", ["app_id"], unique=False)
    op.create_index(op.f("ix_jobs_session_id"), "jobs", ["session_id"], unique=False)
    op.drop_index(op.f("ix_job_leases_session_id"), table_name="job_leases")
    op.drop_table("job_leases")
