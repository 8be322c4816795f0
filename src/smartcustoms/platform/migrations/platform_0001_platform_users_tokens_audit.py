"""platform users tokens audit

Revision ID: platform_0001
Revises:
Create Date: 2026-11-23 02:42:44.269802
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from smartcustoms.platform import append_only

revision: str = "platform_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("platform",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "platform_audit",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("entity", sa.String(length=64), nullable=False),
        sa.Column("entity_id", sa.String(length=64), nullable=False),
        sa.Column("remote_addr", sa.String(length=64), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_platform_audit")),
    )
    with op.batch_alter_table("platform_audit", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_platform_audit_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_platform_audit_entity_id"), ["entity_id"], unique=False)
    append_only.install("platform_audit")

    op.create_table(
        "platform_user",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("party_id", sa.String(length=35), nullable=True),
        sa.Column("language", sa.String(length=16), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_platform_user")),
        sa.UniqueConstraint("username", name=op.f("uq_platform_user_username")),
    )
    with op.batch_alter_table("platform_user", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_platform_user_party_id"), ["party_id"], unique=False)

    op.create_table(
        "platform_token",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["platform_user.id"], name=op.f("fk_platform_token_user_id_platform_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_platform_token")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_platform_token_token_hash")),
    )
    with op.batch_alter_table("platform_token", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_platform_token_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    append_only.remove("platform_audit")
    with op.batch_alter_table("platform_token", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_platform_token_user_id"))

    op.drop_table("platform_token")
    with op.batch_alter_table("platform_user", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_platform_user_party_id"))

    op.drop_table("platform_user")
    with op.batch_alter_table("platform_audit", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_platform_audit_entity_id"))
        batch_op.drop_index(batch_op.f("ix_platform_audit_at"))

    op.drop_table("platform_audit")
