"""Alembic's environment for the results store: migrate the connection the caller gives.

:func:`vsbatch.results.migrate.upgrade` passes an open connection in
``config.attributes["connection"]``; there is no ``alembic.ini`` and no offline mode.
"""

from __future__ import annotations

from alembic import context

from vsbatch.results.engine import VERSION_TABLE
from vsbatch.results.schema import METADATA

connection = context.config.attributes["connection"]
# render_as_batch: SQLite alters a table by copying it; later migrations then work on both.
context.configure(
    connection=connection,
    target_metadata=METADATA,
    render_as_batch=True,
    version_table=VERSION_TABLE,
)
with context.begin_transaction():
    context.run_migrations()
