"""The transactional outbox: e-mails and webhooks written by rules in the same transaction
as the write that caused them, delivered after commit by a worker or the in-process
dispatcher. Times are Unix seconds so that due-ness compares the same on every database.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tessera_outbox",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("event_key", sa.String(64), nullable=False, unique=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("entity", sa.String(200), nullable=False),
        sa.Column("record_id", sa.String(40), nullable=False),
        sa.Column("rule", sa.String(200), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.Float(53), nullable=False),
        sa.Column("claimed_until", sa.Float(53), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.Float(53), nullable=False),
        sa.Column("delivered_at", sa.Float(53), nullable=True),
    )
    op.create_index(
        "ix_tessera_outbox_status_next_attempt_at", "tessera_outbox", ["status", "next_attempt_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_tessera_outbox_status_next_attempt_at", "tessera_outbox")
    op.drop_table("tessera_outbox")
