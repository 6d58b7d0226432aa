"""Tables of the hub's reporting jobs (AP2T daily batches), on the shared `schema.metadata`."""

from __future__ import annotations

from sqlalchemy import Column, Date, Index, Integer, String, Table

from operator_data.store.schema import metadata
from operator_data.store.types import UTCDateTime

# One row per WIB calendar day and revision. `generated_at` is the data cut of the day's
# first export (the same for all its revisions): a re-export reads only what had arrived by
# then, so the file is byte-identical, and readings that arrive later go into the next
# batch as corrections. When the data behind the cut changed anyway (a purge, a meter moved
# to another customer), the re-export is a new revision with its own file and delivery
# state (`supersedes` = the revision it replaces); the earlier rows are never rewritten,
# so an acknowledged batch stays on record with its receipt (migration 0003_ap2t_revisions).
ap2t_batches = Table(
    "ap2t_batches",
    metadata,
    Column("day", Date, primary_key=True),
    Column("revision", Integer, primary_key=True, autoincrement=False, default=1),
    Column("supersedes", Integer, nullable=True),
    Column("generated_at", UTCDateTime, nullable=False),
    Column("exported_at", UTCDateTime, nullable=True),  # when this revision was written
    Column("file", String(64), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("record_count", Integer, nullable=False),
    Column("corrections", Integer, nullable=False),
    Column("acknowledged_at", UTCDateTime, nullable=True),
    Column("receipt", String(128), nullable=True),
    Column("delivery", String(256), nullable=True),  # e.g. "http:<url>" or "dir:<path>"
)
Index("ix_ap2t_batches_acknowledged_at", ap2t_batches.c.acknowledged_at)
