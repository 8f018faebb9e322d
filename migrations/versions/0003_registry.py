"""Registry of what this database holds: installed module packs (name, version) and the
entity tables Tessera created, so that a later migrate knows which tables are its own.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tessera_module",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("version", sa.String(50), nullable=False),
        sa.Column("installed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("upgraded_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "tessera_table",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("entity", sa.String(200), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("tessera_table")
    op.drop_table("tessera_module")
