"""Scheduled rule runs: one row per (rule, slot), so that of several schedulers only the
one whose insert wins runs a slot.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tessera_schedule_run",
        sa.Column("rule", sa.String(400), primary_key=True),
        sa.Column("slot", sa.String(40), primary_key=True),
        sa.Column("ran_at", sa.Float(53), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("tessera_schedule_run")
