"""Tables of the hub's workflows, on the shared `schema.metadata`.

- `hub_purchases`: the P2APST purchase journal (the client's `PurchaseJournal`): one row per
  switcher reference, written before the 2200 leaves. The result carries the token, so it
  is kept sealed under the master key (AAD = the key).
- `hub_reports`: the token-report outbox (`ReportOutbox`); the report names the token, so
  it is sealed too.
- `hub_deliveries`: one row per token on its way to a meter: the frame reference the
  meter echoes in TOKEN_RESULT, how many times the frame went out, and when the meter's
  silence next has to be looked at. The sweep reads timers from here, so they survive a
  restart.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
)

from operator_data.store.schema import metadata
from operator_data.store.types import BigId, UTCDateTime

hub_purchases = Table(
    "hub_purchases",
    metadata,
    Column("key", String(32), primary_key=True),  # switcher reference
    Column("request", Text, nullable=False),  # PurchaseRequest JSON (no secrets)
    Column("stan", String(12), nullable=False),
    Column("sent_at", UTCDateTime, nullable=False),
    Column("result_sealed", LargeBinary, nullable=True),  # PurchaseResult JSON, sealed
    Column("result_master_id", String(32), nullable=True),
    Column("completed_at", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
)
Index("ix_hub_purchases_completed_at", hub_purchases.c.completed_at)

hub_reports = Table(
    "hub_reports",
    metadata,
    Column("report_id", String(32), primary_key=True),
    Column("transaction_id", String(26), nullable=True),
    Column("report_sealed", LargeBinary, nullable=False),  # TokenReport JSON, sealed
    Column("master_id", String(32), nullable=False),
    Column("acknowledged", Boolean, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("acknowledged_at", UTCDateTime, nullable=True),
)
Index("ix_hub_reports_acknowledged", hub_reports.c.acknowledged, hub_reports.c.created_at)

hub_deliveries = Table(
    "hub_deliveries",
    metadata,
    # The id is also the 32-bit reference of TOKEN_DELIVERY / TOKEN_RESULT.
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("transaction_id", String(26), nullable=False, unique=True),
    Column("meter_number", String(11), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_check_at", UTCDateTime, nullable=True),  # NULL: finished
    Column("outcome", String(32), nullable=True),
    Column("escalated", Boolean, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=True),
    Column("last_frame_message_id", BigInteger, nullable=True),
)
Index("ix_hub_deliveries_next_check_at", hub_deliveries.c.next_check_at)
Index("ix_hub_deliveries_meter_number", hub_deliveries.c.meter_number)

# How many answers each number (and, as `*`, the hub) got in its current window, and when
# an unregistered number or a reply-looking SMS was last answered (hub/reply_budget.py).
reply_budgets = Table(
    "reply_budgets",
    metadata,
    Column("msisdn", String(16), primary_key=True),
    Column("window_start", UTCDateTime, nullable=False),
    Column("replies", Integer, nullable=False),
    Column("unregistered_at", UTCDateTime, nullable=True),
    Column("reply_like_at", UTCDateTime, nullable=True),
)
