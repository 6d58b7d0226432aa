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


# -- batch documents (several events in one bus message) -------------------------------------


def _events(n: int) -> list[InboundSms]:
    return [InboundSms(f"e{k}", "+6281234567890", NOW, text=f"SALDO {k}") for k in range(n)]


@given(count=st.integers(min_value=1, max_value=payload.MAX_BATCH))
def test_a_batch_round_trips_in_order(count: int) -> None:
    events = _events(count)
    assert payload.loads_many(payload.dumps_many(events)) == events


def test_a_batch_of_one_is_the_items_own_document() -> None:
    """What a worker that predates batches reads: one event alone stays a plain payload."""
    [event] = _events(1)
    assert payload.dumps_many([event]) == payload.dumps(event)
    assert payload.loads(payload.dumps_many([event])) == event
    assert payload.loads_many(payload.dumps(event)) == [event]


def test_a_bad_item_in_a_batch_costs_only_itself() -> None:
    good = [payload.to_document(e) for e in _events(2)]
    document = {"v": 1, "kind": "batch", "items": [good[0], {"v": 1, "kind": "nope"}, good[1]]}
    first, bad, second = payload.loads_many(json.dumps(document).encode())
    assert first == _events(2)[0] and second == _events(2)[1]
    assert isinstance(bad, PayloadError) and "batch item 1: unknown payload kind" in str(bad)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"v": 2, "kind": "batch", "items": []}, "version 2"),
        ({"v": 1, "kind": "batch", "items": []}, "non-empty list"),
        ({"v": 1, "kind": "batch", "items": "x"}, "non-empty list"),
        ({"v": 1, "kind": "batch", "items": [{}] * (payload.MAX_BATCH + 1)}, "at most"),
    ],
)
def test_bad_batches_say_what_is_wrong(document: object, message: str) -> None:
    with pytest.raises(PayloadError, match=message):
        payload.loads_many(json.dumps(document).encode())


def test_a_batch_inside_a_batch_is_refused() -> None:
    inner = {"v": 1, "kind": "batch", "items": [payload.to_document(_events(1)[0])]}
    [refused] = payload.loads_many(json.dumps({"v": 1, "kind": "batch", "items": [inner]}))
    assert isinstance(refused, PayloadError) and "inside a batch" in str(refused)


def test_a_batch_is_never_empty_nor_too_long() -> None:
    with pytest.raises(ValueError):
        payload.dumps_many([])
    with pytest.raises(ValueError):
        payload.dumps_many(_events(payload.MAX_BATCH + 1))


@given(raw=st.binary(max_size=300))
def test_arbitrary_bytes_load_many_or_raise_payload_error(raw: bytes) -> None:
    with contextlib.suppress(PayloadError):
        payload.loads_many(raw)


@given(
    items=st.lists(
        st.dictionaries(st.sampled_from(["v", "kind", "event_id", "x"]), st.integers() | st.text()),
        max_size=5,
    )
)
def test_arbitrary_batch_items_load_or_say_why(items: list[dict[str, object]]) -> None:
    document = json.dumps({"v": 1, "kind": "batch", "items": items}).encode()
    with contextlib.suppress(PayloadError):
        payload.loads_many(document)
