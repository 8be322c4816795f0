"""declaration findings from other slices' checks

Revision ID: clearance_0002
Revises: clearance_0001
Create Date: 2026-11-23 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "clearance_0002"
down_revision: str | Sequence[str] | None = "clearance_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("clearance_declaration") as batch:
        batch.add_column(sa.Column("findings", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("clearance_declaration") as batch:
        batch.drop_column("findings")
