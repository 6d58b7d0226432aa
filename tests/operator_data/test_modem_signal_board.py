"""The hub keeps what gateways report of their modems (signal, operator, IMEI), shows it on
the status board and exports the signal for /metrics (issue 18 item 6, issue 17 item 8)."""

from __future__ import annotations

from datetime import timedelta

from gateway.transport import SIGNAL_DETAIL, ModemStateChanged, ModemStatus
from operator_data.hub.status import ModemBoard
from operator_data.store import Store
from tests.operator_data.test_ops_metrics import T0, _Clock, _of, _scrape, sqlite_store

__all__ = ["sqlite_store"]  # the fixture, re-used


def _event(modem: str, minutes: int, **fields: object) -> ModemStateChanged:
    return ModemStateChanged(
        f"e-{modem}-{minutes}",
        modem,
        ModemStatus.READY,
        T0 + timedelta(minutes=minutes),
        gateway="gw-a",
        **fields,  # type: ignore[arg-type]
    )


async def test_the_board_keeps_the_figures_and_a_signal_event_keeps_the_reason() -> None:
    board = ModemBoard()
    board.seen(
        _event("m1", 0, detail="started", signal_percent=68, operator="XL", imei="356938035643809"),
        T0,
    )
    board.seen(_event("m1", 5, detail=SIGNAL_DETAIL, signal_percent=6), T0)
    (gateway,) = await board.gateways()
    (modem,) = gateway.modems
    assert (modem.signal_percent, modem.operator, modem.imei) == (6, "XL", "356938035643809")
    assert modem.detail == "ready started"
    assert modem.last_seen == T0 + timedelta(minutes=5)


async def test_signal_is_exported_only_where_known(sqlite_store: Store) -> None:
    board = ModemBoard(worker="hub-a")
    board.seen(_event("m1", 0, signal_percent=42), T0)
    board.seen(_event("m2", 0), T0)  # an older gateway: no figure, no series
    samples = await _scrape(sqlite_store, _Clock(T0), status=board)
    signal = {dict(k)["modem"]: v for k, v in _of(samples, "pintar_modem_signal_percent").items()}
    assert signal == {"m1": 42}
