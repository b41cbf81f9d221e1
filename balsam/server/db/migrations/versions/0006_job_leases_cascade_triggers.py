"""job_leases: cascade deletes by statement triggers instead of foreign keys

The two foreign keys of `job_leases` checked every new lease against `jobs` and `sessions`, one lookup per row
and per key: 13 to 24 ms of an acquire of 1,000 jobs (EXPLAIN ANALYZE, docs/benchmarks.md). Those checks
prove nothing the acquire does not already hold: it inserts leases only for job rows it has locked FOR UPDATE
in the same statement, for the session whose row it locked first, so neither can be deleted before it commits.

What the keys also did is kept: deleting jobs or sessions (directly, or by the cascade from an app or a site;
a batch job's deletion sets its sessions' batch_job_id to null and leaves them) deletes their leases. Two AFTER DELETE triggers do that once per statement, from the deleted rows'
transition table. A concurrent delete waits on the row lock the acquire holds and, under READ COMMITTED, the
trigger's own DELETE takes a new snapshot, so it sees the leases that acquire committed.

The upgrade first removes any lease whose job or session is gone (there are none while the keys exist; it
keeps the upgrade safe on a database someone edited by hand). The downgrade puts the keys back.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 23:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# What replaces each key: (lease column, parent table, the key's name, the trigger and its function's name).
_KEYS = (
    ("job_id", "jobs", "fk_job_leases_job_id_jobs", "job_leases_release_deleted_jobs"),
    ("session_id", "sessions", "fk_job_leases_session_id_sessions", "job_leases_release_deleted_sessions"),
)


def upgrade() -> None:
    # Taken at once and in one order, so that no acquire or delete slips between dropping a key and creating
    # its trigger.
    op.execute("LOCK TABLE jobs, sessions, job_leases IN ACCESS EXCLUSIVE MODE")
    for _column, _parent, key, _function in _KEYS:
        op.drop_constraint(op.f(key), "job_leases", type_="foreignkey")
    op.execute(
        "DELETE FROM job_leases l WHERE NOT EXISTS (SELECT 1 FROM jobs j WHERE j.id = l.job_id)"
        " OR NOT EXISTS (SELECT 1 FROM sessions s WHERE s.id = l.session_id)"
    )
    for column, parent, _key, function in _KEYS:
        op.execute(
            f"CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
            "BEGIN\n"
            f"    DELETE FROM job_leases WHERE {column} IN (SELECT id FROM deleted);\n"
            "    RETURN NULL;\n"
            "END\n"
            "$$"
        )
        op.execute(
            f"CREATE TRIGGER {function} AFTER DELETE ON {parent} REFERENCING OLD TABLE AS deleted"
            f" FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
        )


def downgrade() -> None:
    op.execute("LOCK TABLE jobs, sessions, job_leases IN ACCESS EXCLUSIVE MODE")
    for column, parent, key, function in _KEYS:
        op.execute(f"DROP TRIGGER {function} ON {parent}")
        op.execute(f"DROP FUNCTION {function}()")
        op.create_foreign_key(op.f(key), "job_leases", parent, [column], ["id"], ondelete="CASCADE")
