"""job sizes take any integer, as upstream

Upstream stores whatever integers a client sends for num_nodes, node_packing_count and wall_time_min
(spec §12.8), and answering 4xx where upstream answers 2xx stalls the published client (§14.13). Acquire
already guards its node footprint against zero and negative values, so the checks go.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 22:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CHECKS = {
    "ck_jobs_node_packing_count_positive": "node_packing_count >= 1",
    "ck_jobs_num_nodes_positive": "num_nodes >= 1",
    "ck_jobs_wall_time_min_nonnegative": "wall_time_min >= 0",
}


def upgrade() -> None:
    for name in _CHECKS:
        op.drop_constraint(op.f(name), "jobs", type_="check")  # op.f: the name is final, no naming convention


def downgrade() -> None:
    # NOT VALID: rows stored meanwhile may break the old rules; new writes are checked again.
    for name, condition in _CHECKS.items():
        op.execute(f"ALTER TABLE jobs ADD CONSTRAINT {name} CHECK ({condition}) NOT VALID")
