"""Log of applied entity migrations: when, by whom, the plan, and the definitions' hash.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tessera_migration",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("applied_by", sa.String(200), nullable=False),
        sa.Column("definitions_hash", sa.String(64), nullable=False),
        sa.Column("plan", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("tessera_migration")
