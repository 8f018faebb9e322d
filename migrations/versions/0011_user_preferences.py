"""Users' own locale and time zone (docs/locales.md): how they read numbers, money and dates
in the web UI, print formats and CSV exports for people. Empty: the instance's defaults.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tessera_user") as batch:
        batch.add_column(sa.Column("locale", sa.String(35), nullable=True))
        batch.add_column(sa.Column("timezone", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tessera_user") as batch:
        batch.drop_column("timezone")
        batch.drop_column("locale")
