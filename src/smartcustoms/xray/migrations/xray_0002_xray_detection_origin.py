"""xray detections drawn by officers (origin)

Revision ID: xray_0002
Revises: xray_0001
Create Date: 2026-11-23 06:50:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "xray_0002"
down_revision: str | Sequence[str] | None = "xray_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("xray_detection", schema=None) as batch_op:
        batch_op.add_column(sa.Column("origin", sa.String(length=16), server_default="model", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("xray_detection", schema=None) as batch_op:
        batch_op.drop_column("origin")
