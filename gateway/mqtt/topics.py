"""The topic tree, in one place. `root` lets several systems (or tests) share a broker."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

ONLINE = b"online"
OFFLINE = b"offline"


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
