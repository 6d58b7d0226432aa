"""The P2APST client: a durable, self-healing ISO 8583 link."""

from p2apst_adapter.client.client import ClientSettings, P2apstClient, P2apstUnavailable
from p2apst_adapter.client.journal import JournalEntry, PurchaseJournal, ReportOutbox
from p2apst_adapter.client.link import Link, LinkLost
from p2apst_adapter.client.sqlite_store import (
    SqlitePurchaseJournal,
    SqliteReportOutbox,
    SqliteStore,
)
from p2apst_adapter.client.stan import StanSource

__all__ = [
    "ClientSettings",
    "JournalEntry",
    "Link",
    "LinkLost",
    "P2apstClient",
    "P2apstUnavailable",
    "PurchaseJournal",
    "ReportOutbox",
    "SqlitePurchaseJournal",
    "SqliteReportOutbox",
    "SqliteStore",
    "StanSource",
]
