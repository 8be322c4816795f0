"""tracking route variants: an approved route may list other polylines the operator is approved to drive

Revision ID: tracking_0003
Revises: tracking_0002
Create Date: 2026-11-23 09:50:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "tracking_0003"
down_revision: str | Sequence[str] | None = "tracking_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tracking_route", schema=None) as batch_op:
        batch_op.add_column(sa.Column("variants", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tracking_route", schema=None) as batch_op:
        batch_op.drop_column("variants")
