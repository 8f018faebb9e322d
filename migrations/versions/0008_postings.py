"""The postings journal: what each document's submit posted (ledger rows, balance and
record increments), so that cancelling it reverses exactly that (docs/ledgers.md).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tessera_posting",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("voucher_type", sa.String(200), nullable=False),
        sa.Column("voucher_id", sa.BigInteger(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("target", sa.String(200), nullable=False),
        sa.Column("target_id", sa.BigInteger(), nullable=False),
        sa.Column("deltas", sa.Text(), nullable=False),
        sa.Column("at", sa.String(400), nullable=False),
        sa.Column("ledger_seq", sa.Integer(), nullable=True),
        sa.Column("after", sa.Text(), nullable=True),
    )
    op.create_index(
        "ix_tessera_posting_voucher_type_voucher_id",
        "tessera_posting",
        ["voucher_type", "voucher_id"],
    )


def downgrade() -> None:
    op.drop_index("ix_tessera_posting_voucher_type_voucher_id", "tessera_posting")
    op.drop_table("tessera_posting")
