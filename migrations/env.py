"""Alembic environment for Tessera's own system tables.

Entity tables are not managed here: they are planned from the definitions by
``engine.migrate``. This environment is run programmatically by ``tessera migrate`` with an
open connection passed in ``config.attributes["connection"]``.
"""

from __future__ import annotations

from alembic import context

from engine.migrate import SYSTEM_VERSION_TABLE
from engine.tables import system_metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=system_metadata,
    version_table=SYSTEM_VERSION_TABLE,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
