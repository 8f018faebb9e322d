"""Files: one row per stored file (a ``file`` field's or an attachment), naming its record,
its storage key, name, sniffed content type, size and SHA-256 (engine/files/catalog.py).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tessera_file",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("content_type", sa.String(200), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("entity", sa.String(200), nullable=False),
        sa.Column("record_id", sa.String(40), nullable=False),
        sa.Column("field", sa.String(100), nullable=True),
        sa.Column("created_by", sa.String(64), nullable=True),
        sa.Column("created_at", sa.Float(53), nullable=False),
        sa.UniqueConstraint("key", name="uq_tessera_file_key"),
    )
    op.create_index("ix_tessera_file_entity_record_id", "tessera_file", ["entity", "record_id"])


def downgrade() -> None:
    op.drop_index("ix_tessera_file_entity_record_id", "tessera_file")
    op.drop_table("tessera_file")
