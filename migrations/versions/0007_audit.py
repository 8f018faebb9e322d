"""The audit trail: one row per create, update and delete, written in the same transaction
as the write, with the changed fields' old and new values; and refused sign-ins and
permission denials.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tessera_audit",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("at", sa.Float(53), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=True),
        sa.Column("entity", sa.String(200), nullable=False),
        sa.Column("record_id", sa.String(40), nullable=False),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("changes", sa.Text(), nullable=False),
    )
    op.create_index("ix_tessera_audit_entity_record_id", "tessera_audit", ["entity", "record_id"])


def downgrade() -> None:
    op.drop_index("ix_tessera_audit_entity_record_id", "tessera_audit")
    op.drop_table("tessera_audit")
