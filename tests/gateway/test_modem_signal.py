"""Issue 18 item 6 / issue 17 item 8: IMEI and operator read at start-up, the signal re-read
between sends, carried to the hub on modem-state events (throttled), and old documents."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from gateway import payload
from gateway.at.events import ModemState, ModemStateChanged
from gateway.at.responses import ResponseError, Signal, parse_cgsn, parse_cops
from gateway.pool import ModemPool, PoolConfig
from gateway.pool.signal import SignalThrottle, bucket, signal_percent
from gateway.transport import SIGNAL_DETAIL, ModemStatus
from gateway.transport import ModemStateChanged as TransportModemState
from tests.gateway.at_device import AtDevice
from tests.gateway.test_at_modem import WAIT, Harness, fast_config

pytestmark = pytest.mark.timeout(20)


# -- parsers ----------------------------------------------------------------------------------


def test_cops_gives_the_operator_or_none_when_registered_nowhere() -> None:
    assert parse_cops(' 0,0,"TELKOMSEL",2') == "TELKOMSEL"
    assert parse_cops("0") is None
    for junk in ("", "x", "0,0,TELKOMSEL", '0,a,"X"', "0,0"):
        with pytest.raises(ResponseError):
            parse_cops(junk)


def test_cgsn_takes_the_imei_line_in_any_common_form() -> None:
    assert parse_cgsn(("356938035643809",)) == "356938035643809"
    assert parse_cgsn(('+CGSN: "356938035643809"',)) == "356938035643809"
    with pytest.raises(ResponseError):
        parse_cgsn(("ERROR-ish", "12ab"))


def test_percent_and_throttle() -> None:
    assert signal_percent(Signal(31, 99)) == 100
    assert signal_percent(Signal(0, 0)) == 0
    assert signal_percent(Signal(99, 99)) is None
    assert signal_percent(None) is None
    assert bucket(100) == bucket(95)
    throttle = SignalThrottle(min_gap=300)
    assert throttle.due("m1", 50, 0.0)
    throttle.published("m1", 50, 0.0)
    assert not throttle.due("m1", 55, 400.0)  # same bucket: nothing to say
    assert not throttle.due("m1", 20, 100.0)  # new bucket but too soon
    assert throttle.due("m1", 20, 300.0)


# -- the modem --------------------------------------------------------------------------------


async def test_startup_reads_imei_operator_and_signal_into_the_ready_event() -> None:
    async with AtDevice() as device:
        harness = Harness(device)
        async with harness.modem() as modem:
            ready = await harness.next(ModemStateChanged, lambda e: e.state is ModemState.READY)
            assert ready.imei == "356938035643809"
            assert ready.operator == "TELKOMSEL"
            assert ready.signal == Signal(21, 99)
            device.on(r"AT\+CSQ", ["+CSQ: 5,99", "OK"])
            assert await modem.refresh_signal() == Signal(5, 99)


@pytest.mark.parametrize(
    "answer",
    [["ERROR"], ["+CME ERROR: 100"], ["+CSQ: x,y", "OK"], ["OK"]],
    ids=["error", "cme", "junk", "no-line"],
)
async def test_refused_or_junk_answers_leave_the_field_unknown_and_the_modem_working(
    answer: list[str],
) -> None:
    async with AtDevice() as device:
        cgsn = ["ERROR"] if answer == ["ERROR"] else ["not-an-imei", "OK"]
        device.on(r"AT\+CGSN", cgsn)
        device.on(r"AT\+COPS\?", ["+COPS: zero", "OK"])
        harness = Harness(device)
        async with harness.modem() as modem:
            assert modem.state is ModemState.READY
            assert modem.imei is None and modem.operator is None
            device.on(r"AT\+CSQ", answer)
            assert await modem.refresh_signal() is None
            assert modem.signal_reading is None
            assert modem.state is ModemState.READY


# -- the pool ---------------------------------------------------------------------------------


class _Persist:
    async def __call__(self, sms: object) -> None:
        return None


@pytest.fixture
async def pool_and_device() -> AsyncIterator[tuple[ModemPool, AtDevice]]:
    async with AtDevice() as device:
        config = PoolConfig(signal_interval=0, signal_min_gap=0)
        async with ModemPool([fast_config(device)], persist=_Persist(), config=config) as pool:
            yield pool, device


async def _next_state(pool: ModemPool) -> TransportModemState:
    import asyncio

    async def find() -> TransportModemState:
        async for event in pool.events():
            if isinstance(event, TransportModemState):
                return event
        raise AssertionError("event stream ended")

    return await asyncio.wait_for(find(), WAIT)


async def test_a_signal_change_is_published_with_the_same_state_and_only_on_a_new_bucket(
    pool_and_device: tuple[ModemPool, AtDevice],
) -> None:
    pool, device = pool_and_device
    while (first := await _next_state(pool)).status is not ModemStatus.READY:
        pass
    assert first.signal_percent == signal_percent(Signal(21, 99))
    assert (first.operator, first.imei) == ("TELKOMSEL", "356938035643809")
    assert not await pool.poll_signal("m1")  # 21 again: the same bucket
    device.on(r"AT\+CSQ", ["+CSQ: 2,99", "OK"])
    assert await pool.poll_signal("m1")
    event = await _next_state(pool)
    assert (event.status, event.detail) == (ModemStatus.READY, SIGNAL_DETAIL)
    assert (event.signal_rssi, event.signal_percent) == (2, 6)
    assert event.imei == "356938035643809"
    with pytest.raises(KeyError):
        await pool.poll_signal("nope")


# -- the bus document -------------------------------------------------------------------------

AT = datetime(2026, 1, 1, tzinfo=UTC)


def test_the_new_fields_round_trip_and_an_old_document_decodes_to_none() -> None:
    event = TransportModemState(
        "e1",
        "m1",
        ModemStatus.READY,
        AT,
        signal_rssi=9,
        signal_percent=29,
        operator="XL",
        imei="356938035643809",
    )
    assert payload.loads(payload.dumps(event)) == event
    old = {
        "v": 1,
        "kind": "modem-state",
        "event_id": "e2",
        "modem": "m1",
        "status": "ready",
        "at": AT.isoformat(),
        "detail": "",
        "gateway": "gw",
    }
    decoded = payload.loads(json.dumps(old))
    assert isinstance(decoded, TransportModemState)
    assert (decoded.signal_percent, decoded.operator, decoded.imei) == (None, None, None)


@pytest.mark.parametrize(
    ("field", "value"),
    [("signal_percent", 101), ("signal_percent", "50"), ("signal_rssi", True), ("imei", 123)],
)
def test_a_bad_figure_is_a_payload_error_naming_the_field(field: str, value: object) -> None:
    document = payload.to_document(TransportModemState("e", "m1", ModemStatus.READY, AT))
    document[field] = value
    with pytest.raises(payload.PayloadError, match=field):
        payload.from_document(document)
