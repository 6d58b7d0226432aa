"""Versioned JSON payloads of transport events: round trips, and refusal of anything else."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway import payload
from gateway.payload import PayloadError
from gateway.transport import InboundSms, OutboundSms

NOW = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)


@given(
    data=st.binary(max_size=140),
    sender=st.text(min_size=1, max_size=20),
    pdus=st.lists(st.text(alphabet="0123456789ABCDEF", max_size=40), max_size=3),
)
def test_inbound_round_trips(data: bytes, sender: str, pdus: list[str]) -> None:
    event = InboundSms("e", sender, NOW, data=data, raw_pdus=tuple(pdus))
    assert payload.loads(payload.dumps(event)) == event


@given(text=st.text(max_size=300), report=st.booleans())
def test_outbound_round_trips(text: str, report: bool) -> None:
    sms = OutboundSms("m", "+6281234567890", text=text, status_report=report)
    assert payload.loads(payload.dumps(sms)) == sms


@given(raw=st.binary(max_size=200))
def test_arbitrary_bytes_load_or_raise_payload_error(raw: bytes) -> None:
    with contextlib.suppress(PayloadError):
        payload.loads(raw)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"v": 2, "kind": "inbound"}, "version"),
        ({"v": 1, "kind": "teleport"}, "unknown payload kind"),
        ({"v": 1, "kind": "outbound", "message_id": "m", "to": "+62"}, "either text or data"),
        ({"v": 1, "kind": "inbound", "event_id": "e", "sender": "s", "received_at": "x"}, "received_at"),
        ([1, 2], "not a JSON object"),
    ],
)  # fmt: skip
def test_bad_documents_say_what_is_wrong(document: object, message: str) -> None:
    with pytest.raises(PayloadError, match=message):
        payload.loads(json.dumps(document))
