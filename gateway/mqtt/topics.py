"""The topic tree, in one place. `root` lets several systems (or tests) share a broker."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

ONLINE = b"online"
OFFLINE = b"offline"
#: MQTT v5 user property of a gateway's `online` status: its spool backlog (SpoolReport).
#: A property, not the payload, so that a hub reading only `online`/`offline` is unchanged.
SPOOL_PROPERTY = "pintar-spool"


@dataclass(frozen=True, slots=True)
class Topics:
    root: str = "pintar/v1"

    def events(self, gateway: str) -> str:
        """gateway → hub: transport events (QoS 1)."""
        return f"{self.root}/gw/{gateway}/events"

    def send(self, gateway: str) -> str:
        """hub → gateway: outbound SMS (QoS 1)."""
        return f"{self.root}/gw/{gateway}/send"

    def ack(self, gateway: str) -> str:
        """hub → gateway: event ids the hub has stored (QoS 1)."""
        return f"{self.root}/gw/{gateway}/ack"

    def status(self, gateway: str) -> str:
        """gateway → everyone: retained `online`, or `offline` as its last will."""
        return f"{self.root}/gw/{gateway}/status"

    def shared_events(self, group: str) -> str:
        return f"$share/{group}/{self.root}/gw/+/events"

    def all_status(self) -> str:
        return f"{self.root}/gw/+/status"

    def gateway_of(self, topic: str) -> str | None:
        prefix = f"{self.root}/gw/"
        if not topic.startswith(prefix):
            return None
        name, _, _ = topic[len(prefix) :].partition("/")
        return name or None


def ack_payload(event_ids: Sequence[str]) -> bytes:
    return json.dumps({"v": 1, "kind": "ack", "event_ids": list(event_ids)}).encode()


def parse_ack(raw: bytes) -> list[str]:
    try:
        document = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return []
    if not isinstance(document, dict) or document.get("v") != 1 or document.get("kind") != "ack":
        return []
    ids = document.get("event_ids")
    return [i for i in ids if isinstance(i, str)] if isinstance(ids, list) else []


@dataclass(frozen=True, slots=True)
class SpoolReport:
    """A gateway's spool backlog as it counted it: rows by state, and when."""

    rows: Mapping[str, int]
    at: datetime


def spool_property(report: SpoolReport) -> str:
    return json.dumps({"v": 1, "rows": dict(report.rows), "at": report.at.isoformat()})


def parse_spool_property(text: str) -> SpoolReport | None:
    """None for anything but a version-1 report with whole counts and an aware time."""
    try:
        document = json.loads(text)
        if not isinstance(document, dict) or document.get("v") != 1:
            return None
        rows, at = document.get("rows"), datetime.fromisoformat(str(document.get("at")))
    except (json.JSONDecodeError, ValueError):
        return None
    if not isinstance(rows, dict) or at.tzinfo is None:
        return None
    counts = {k: v for k, v in rows.items() if isinstance(v, int) and not isinstance(v, bool)}
    if len(counts) != len(rows) or any(v < 0 for v in counts.values()):
        return None
    return SpoolReport(counts, at)
