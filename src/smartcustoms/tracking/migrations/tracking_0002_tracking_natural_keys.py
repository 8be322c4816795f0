"""tracking natural keys: a reading and an alert are stored once

A position/seal reading is keyed by device, fix time, source and kind (`fix`, or `seal` for a seal event
without a GPS fix); an alert by trip, condition and start. Existing copies (exact duplicates the earlier
schema kept with flag `duplicates`, or twice-raised alerts) are removed, the oldest row kept.

Revision ID: tracking_0002
Revises: tracking_0001
Create Date: 2026-11-23 08:01:28.883943
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "tracking_0002"
down_revision: str | Sequence[str] | None = "tracking_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tracking_position", schema=None) as batch_op:
        batch_op.add_column(sa.Column("kind", sa.String(length=8), server_default="fix", nullable=False))
    op.execute("UPDATE tracking_position SET kind = 'seal' WHERE flag = 'no_fix'")
    op.execute(
        "DELETE FROM tracking_position WHERE id NOT IN "
        "(SELECT MIN(id) FROM tracking_position GROUP BY device_id, time, source, kind)"
    )
    op.execute(
        "DELETE FROM tracking_alert WHERE id NOT IN (SELECT MIN(id) FROM tracking_alert GROUP BY trip_id, condition, start)"
    )
    with op.batch_alter_table("tracking_position", schema=None) as batch_op:
        batch_op.create_index("ux_tracking_position_reading", ["device_id", "time", "source", "kind"], unique=True)
    with op.batch_alter_table("tracking_alert", schema=None) as batch_op:
        batch_op.create_index("ux_tracking_alert_condition_start", ["trip_id", "condition", "start"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("tracking_position", schema=None) as batch_op:
        batch_op.drop_index("ux_tracking_position_reading")
        batch_op.drop_column("kind")
    with op.batch_alter_table("tracking_alert", schema=None) as batch_op:
        batch_op.drop_index("ux_tracking_alert_condition_start")
