"""drop the declared-reference index that the unique (reference, doc_ref) constraint already provides

Revision ID: swmanifests_0002
Revises: swmanifests_0001
Create Date: 2026-11-23 21:00:00

Every filing inserts a row here; the second index on `reference` cost one more B-tree insert each and
served no query the unique index (leading column `reference`) does not.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "swmanifests_0002"
down_revision: str | Sequence[str] | None = "swmanifests_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("singlewindow_manifests_declared_ref", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_singlewindow_manifests_declared_ref_reference"))


def downgrade() -> None:
    with op.batch_alter_table("singlewindow_manifests_declared_ref", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_singlewindow_manifests_declared_ref_reference"), ["reference"], unique=False
        )
