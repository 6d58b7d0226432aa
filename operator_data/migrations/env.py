"""Alembic environment: online only, on the connection handed over by the runner."""

from __future__ import annotations

from alembic import context

from operator_data.store.schema import metadata

config = context.config
connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "run migrations through `pintar db upgrade` or Store.migrate(), "
        "which hand Alembic an open connection"
    )

context.configure(
    connection=connection,
    target_metadata=metadata,
    # SQLite cannot ALTER most things: batch mode recreates tables; PostgreSQL ignores it.
    render_as_batch=True,
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
