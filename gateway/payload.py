"""Transport events and outbound SMS as versioned JSON documents.

Used by the gateway's spool (what it keeps on disk) and by the MQTT carrier (what travels on
the bus), so both agree byte for byte. Version 1: {"v": 1, "kind": ..., fields...}; bytes as
hex, times as ISO 8601 UTC. A decoder refuses unknown versions and kinds with PayloadError.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import fields
from datetime import datetime
from typing import Any

from gateway.transport import (
    DeliveryReport,
    InboundSms,
    ModemStateChanged,
    ModemStatus,
    OutboundSms,
    SendResult,
    SendStatus,
    TransportEvent,
)

VERSION = 1

_KINDS: dict[str, type[Any]] = {
    "inbound": InboundSms,
    "send-result": SendResult,
    "delivery-report": DeliveryReport,
    "modem-state": ModemStateChanged,
    "outbound": OutboundSms,
}
_KIND_OF = {cls: kind for kind, cls in _KINDS.items()}
_TIMES = {"received_at", "smsc_timestamp", "at", "discharge_time"}


class PayloadError(ValueError):
    """A document that is not a valid version-1 payload; the message says which field."""


def _encode_value(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, tuple):
        return list(value)
    return value


def to_document(item: TransportEvent | OutboundSms) -> dict[str, Any]:
    document: dict[str, Any] = {"v": VERSION, "kind": _KIND_OF[type(item)]}
    for spec in fields(item):
        document[spec.name] = _encode_value(getattr(item, spec.name))
    return document


def dumps(item: TransportEvent | OutboundSms) -> bytes:
    return json.dumps(to_document(item), separators=(",", ":"), sort_keys=True).encode()


def _decode_value(cls: type[Any], name: str, value: Any) -> Any:
    if value is None:
        return None
    if name in _TIMES:
        return datetime.fromisoformat(value)
    if name == "data":
        return bytes.fromhex(value)
    if name in ("message_references", "raw_pdus"):
        return tuple(value)
    if name == "status" and cls is SendResult:
        return SendStatus(value)
    if name == "status" and cls is ModemStateChanged:
        return ModemStatus(value)
    if cls is ModemStateChanged and name in _MODEM_INTS:
        return _bounded_int(value, *_MODEM_INTS[name])
    if cls is ModemStateChanged and name in _MODEM_TEXTS and not isinstance(value, str):
        raise TypeError(f"expected a string, not {value!r}")
    return value


#: The optional modem-state figures (gateway.transport.ModemStateChanged) and their range.
_MODEM_INTS = {"signal_rssi": (0, 31), "signal_percent": (0, 100)}
_MODEM_TEXTS = frozenset({"operator", "imei"})


def _bounded_int(value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected a whole number, not {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{value} is not {low}-{high}")
    return value


def from_document(document: Any) -> TransportEvent | OutboundSms:
    if not isinstance(document, dict):
        raise PayloadError("payload is not a JSON object")
    if document.get("v") != VERSION:
        raise PayloadError(f"payload version {document.get('v')!r} is not {VERSION}")
    cls = _KINDS.get(document.get("kind"))  # type: ignore[arg-type]
    if cls is None:
        raise PayloadError(f"unknown payload kind {document.get('kind')!r}")
    values: dict[str, Any] = {}
    for spec in fields(cls):
        if spec.name not in document:
            continue
        try:
            values[spec.name] = _decode_value(cls, spec.name, document[spec.name])
        except (TypeError, ValueError) as error:
            raise PayloadError(f"field {spec.name!r}: {error}") from None
    try:
        item: TransportEvent | OutboundSms = cls(**values)
    except (TypeError, ValueError) as error:
        raise PayloadError(f"{document.get('kind')}: {error}") from None
    return item


def loads(raw: bytes | str) -> TransportEvent | OutboundSms:
    return from_document(_json(raw))


def _json(raw: bytes | str) -> Any:
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as error:
        raise PayloadError(f"not JSON: {error}") from None


#: Events in one batch document at most (a bus message stays well under a megabyte).
MAX_BATCH = 256


def dumps_many(items: Sequence[TransportEvent | OutboundSms]) -> bytes:
    """Several items as one document, `{"v": 1, "kind": "batch", "items": [...]}`; a single
    item as its own document (what every reader, older ones included, understands)."""
    if not items:
        raise ValueError("a batch holds at least one item")
    if len(items) > MAX_BATCH:
        raise ValueError(f"a batch holds at most {MAX_BATCH} items")
    if len(items) == 1:
        return dumps(items[0])
    document = {"v": VERSION, "kind": "batch", "items": [to_document(i) for i in items]}
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


def loads_many(raw: bytes | str) -> list[TransportEvent | OutboundSms | PayloadError]:
    """The items of a batch document, or of a single item's, in order. An item that is not
    a valid payload comes back as its PayloadError (naming its index) in its place, so
    the valid ones around it are not lost; a document that is neither raises."""
    document = _json(raw)
    if not (isinstance(document, dict) and document.get("kind") == "batch"):
        return [from_document(document)]
    if document.get("v") != VERSION:
        raise PayloadError(f"payload version {document.get('v')!r} is not {VERSION}")
    items = document.get("items")
    if not isinstance(items, list) or not items:
        raise PayloadError("batch: items is not a non-empty list")
    if len(items) > MAX_BATCH:
        raise PayloadError(f"batch: {len(items)} items, at most {MAX_BATCH}")
    out: list[TransportEvent | OutboundSms | PayloadError] = []
    for index, item in enumerate(items):
        try:
            if isinstance(item, dict) and item.get("kind") == "batch":
                raise PayloadError("a batch inside a batch")
            out.append(from_document(item))
        except PayloadError as error:
            out.append(PayloadError(f"batch item {index}: {error}"))
    return out
