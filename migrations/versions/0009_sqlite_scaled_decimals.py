"""SQLite: decimal columns hold whole numbers of their smallest unit (12.50 at scale 2 is 1250).

Before, SQLite held a decimal as a double, which keeps 15 significant digits. This
converts the decimal columns of the entity tables Tessera created (``tessera_table``) in
place; a double of up to 15 digits scales to its exact integer. PostgreSQL's ``numeric``
was always exact: nothing changes there.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    connection = op.get_bind()
    if connection.dialect.name != "sqlite":
        return
    inspector = sa.inspect(connection)
    if not inspector.has_table("tessera_table"):
        return
    names = connection.execute(sa.text("SELECT name FROM tessera_table")).scalars().all()
    for name in sorted(names):
        if not inspector.has_table(name):
            continue
        for column in inspector.get_columns(name):
            kind = column["type"]
            if not isinstance(kind, sa.Numeric) or isinstance(kind, sa.Float):
                continue
            factor = 10 ** (kind.scale or 0)
            quoted = connection.dialect.identifier_preparer.quote(column["name"])
            table = connection.dialect.identifier_preparer.quote(name)
            connection.exec_driver_sql(
                f"UPDATE {table} SET {quoted} = CAST(ROUND({quoted} * {factor}) AS INTEGER) "  # noqa: S608
                f"WHERE {quoted} IS NOT NULL"
            )


def downgrade() -> None:
    connection = op.get_bind()
    if connection.dialect.name != "sqlite":
        return
    raise NotImplementedError("decimals stay scaled integers on SQLite")
