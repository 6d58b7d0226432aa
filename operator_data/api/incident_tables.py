"""Tables of the incident queue: what the helpdesk did with each hub-opened item, and
what the item is linked to.

`helpdesk_items` itself (store/schema.py) stays the hub's: it opens items there. The
helpdesk's work goes in two append-only tables beside it (migration
0002_helpdesk_incidents), so the trail of who assigned, noted and resolved what is kept
in full rather than overwritten in the item's columns. Both cascade on delete: the
retention purge (operator_data/retention.py) deletes old items and their trail goes with
them.
"""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, Index, String, Table, Text, UniqueConstraint

from operator_data.store.schema import helpdesk_items, metadata
from operator_data.store.types import BigId, UTCDateTime

# One row per thing done to an item: assign, note, resolve, reopen, link.
helpdesk_item_events = Table(
    "helpdesk_item_events",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("item_id", BigId, ForeignKey("helpdesk_items.id", ondelete="CASCADE"), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(64), nullable=False),
    Column("action", String(16), nullable=False),  # assign | note | resolve | reopen | link
    Column("state", String(16), nullable=False),  # the item's state after the action
    Column("assigned_to", String(64), nullable=True),
    Column("note", Text, nullable=True),
)
Index(
    "ix_helpdesk_item_events_item_id_at", helpdesk_item_events.c.item_id, helpdesk_item_events.c.at
)

# What caused an item beyond the columns the hub sets (meter, transaction): a message,
# an alarm, another transaction or meter the helpdesk found related.
helpdesk_item_links = Table(
    "helpdesk_item_links",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("item_id", BigId, ForeignKey("helpdesk_items.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(16), nullable=False),  # transaction | meter | message | alarm
    Column("ref", String(26), nullable=False),
    Column("added_by", String(64), nullable=False),
    Column("added_at", UTCDateTime, nullable=False),
    UniqueConstraint("item_id", "kind", "ref", name="uq_helpdesk_item_links_item_id_kind_ref"),
)

TABLES = (helpdesk_item_events, helpdesk_item_links)

# The queue's "all states" view pages by opening time alone; without this index that
# listing would sort every item ever opened.
Index("ix_helpdesk_items_opened_at", helpdesk_items.c.opened_at)
