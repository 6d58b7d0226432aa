"""The complaint tables (migration 0002_complaints, its own branch off 0001).

Complaints are kept apart from `helpdesk_items` (the hub's incidents): a complaint is a
customer's report with a regulatory clock, an incident is something the system noticed.
No foreign keys to customers, meters or messages: a complaint may come from a phone the
registry does not know, and it must outlive the message log's shorter retention (the
retention purge does not touch these tables; see docs/store.md).
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from operator_data.store.schema import metadata
from operator_data.store.types import BigId, UTCDateTime

complaints = Table(
    "complaints",
    metadata,
    Column("id", String(26), primary_key=True),  # ULID
    Column("ticket", String(16), nullable=False, unique=True),  # what the customer quotes
    Column("channel", String(8), nullable=False),  # call | sms | other
    Column("category", String(16), nullable=False),
    Column("customer_id", String(12), nullable=True),
    Column("meter_number", String(11), nullable=True),
    Column("msisdn", String(16), nullable=True),
    Column("text", Text, nullable=False),  # PIN-like digit runs masked before storing
    Column("state", String(16), nullable=False),  # open | assigned | resolved
    Column("assigned_to", String(64), nullable=True),
    # Caused by a third party (e.g. the mobile operator's network, a bank): counted, but
    # excluded from the 15-working-day target.
    Column("third_party", Boolean, nullable=False, default=False),
    Column("received_at", UTCDateTime, nullable=False),
    Column("resolved_at", UTCDateTime, nullable=True),
    Column("resolution_code", String(16), nullable=True),
    Column("resolution", Text, nullable=True),
    Column("opened_by", String(64), nullable=False),  # a helpdesk user, or "sms"
    Column("source_message_id", String(26), nullable=True, unique=True),  # the ADUAN SMS
    CheckConstraint("state IN ('open', 'assigned', 'resolved')", name="state"),
    CheckConstraint("channel IN ('call', 'sms', 'other')", name="channel"),
)
Index("ix_complaints_received_at", complaints.c.received_at)
Index("ix_complaints_state_received_at", complaints.c.state, complaints.c.received_at)
Index("ix_complaints_customer_id", complaints.c.customer_id)
Index("ix_complaints_meter_number", complaints.c.meter_number)
Index("ix_complaints_msisdn", complaints.c.msisdn)

# One row per thing done to a complaint, append-only: the trail is kept in full.
complaint_events = Table(
    "complaint_events",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column(
        "complaint_id", String(26), ForeignKey("complaints.id", ondelete="CASCADE"), nullable=False
    ),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(64), nullable=False),
    # open | assign | note | link | third_party | resolve | reopen
    Column("action", String(16), nullable=False),
    Column("state", String(16), nullable=False),  # the complaint's state after the action
    Column("assigned_to", String(64), nullable=True),
    Column("note", Text, nullable=True),
)
Index("ix_complaint_events_complaint_id_at", complaint_events.c.complaint_id, complaint_events.c.at)

# The transactions and messages the helpdesk found related.
complaint_links = Table(
    "complaint_links",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column(
        "complaint_id", String(26), ForeignKey("complaints.id", ondelete="CASCADE"), nullable=False
    ),
    Column("kind", String(16), nullable=False),  # transaction | message
    Column("ref", String(26), nullable=False),
    Column("added_by", String(64), nullable=False),
    Column("added_at", UTCDateTime, nullable=False),
    UniqueConstraint("complaint_id", "kind", "ref"),
)

TABLES = (complaints, complaint_events, complaint_links)
