"""Users and API tokens. Passwords are stored as Argon2 hashes, tokens as SHA-256 digests
of their random text (the text itself is shown once, when the token is issued).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "tessera_user",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("username", sa.String(150), nullable=False),
        sa.Column("password_hash", sa.String(200), nullable=True),
        sa.Column("roles", sa.Text(), nullable=False),
        sa.Column("active", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.Float(53), nullable=False),
        sa.UniqueConstraint("username", name="uq_tessera_user_username"),
    )
    op.create_table(
        "tessera_token",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column(
            "user_id",
            _ID,
            sa.ForeignKey("tessera_user.id", name="fk_tessera_token_user_id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float(53), nullable=False),
        sa.Column("expires_at", sa.Float(53), nullable=True),
        sa.Column("revoked_at", sa.Float(53), nullable=True),
        sa.UniqueConstraint("token_hash", name="uq_tessera_token_token_hash"),
    )
    op.create_index("ix_tessera_token_user_id", "tessera_token", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_tessera_token_user_id", "tessera_token")
    op.drop_table("tessera_token")
    op.drop_table("tessera_user")
