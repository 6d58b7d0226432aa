"""The simulator's books on a file outlive the simulator: a restarted simulator issues no
token twice, answers a reference it was paid for as already paid (and gives its token by
advice), and keeps no token in clear on disk."""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

from firmware_protocol import sts
from p2apst_adapter.client import P2apstClient, SqliteStore
from p2apst_adapter.dialect import ResponseCode
from p2apst_adapter.model import WIB, PurchaseRequest
from p2apst_adapter.simulator import (
    Ledger,
    LedgerError,
    LedgerState,
    P2apstSimulator,
)
from tests.p2apst_adapter.test_link import FAST, METER, METERS

pytestmark = pytest.mark.timeout(30)


def _request(reference: str) -> PurchaseRequest:
    return PurchaseRequest(
        switcher_reference=reference,
        meter_number=METER.meter_number,
        customer_id=METER.customer_id,
        amount=Decimal(100_000),
        admin_fee=Decimal(2500),
    )


def _client(sim: P2apstSimulator, store: SqliteStore) -> P2apstClient:
    return P2apstClient(
        "127.0.0.1", sim.port, journal=store.journal, outbox=store.outbox, settings=FAST
    )


def _tid(token: str | None) -> int:
    assert token is not None
    return sts.decode(token, METER.decoder_key()).fields.tid


def _files(directory: Path) -> Iterator[Path]:
    return (path for path in directory.iterdir() if path.is_file())


async def test_a_reopened_ledger_issues_no_token_twice_and_knows_what_was_paid(
    tmp_path: Path,
) -> None:
    books = tmp_path / "sim" / "ledger.db"
    books.parent.mkdir()
    old = os.umask(0o022)
    try:
        with Ledger(books) as ledger:
            async with (
                P2apstSimulator(METERS, ledger=ledger, seed=7) as sim,
                SqliteStore(tmp_path / "one.sqlite") as store,
                _client(sim, store) as client,
            ):
                first = [await client.purchase(_request(f"REF-{n}")) for n in range(3)]
                offered_first = await client.inquiry(meter_number=METER.meter_number)
    finally:
        os.umask(old)
    assert all(r.paid for r in first)
    # On disk: owner-only files, and no token in clear (whole or in groups of four).
    files = list(_files(books.parent))
    assert {p.name for p in files} >= {"ledger.db", "ledger.db.key"}
    assert {p.name: stat.S_IMODE(p.stat().st_mode) & 0o077 for p in files} == {
        p.name: 0 for p in files
    }
    blob = b"".join(p.read_bytes() for p in files)
    for result in first:
        assert result.token is not None
        assert result.token.encode() not in blob
        assert result.token[:8].encode() not in blob

    # A fresh journal on the hub's side (what a restarted demo without it would be).
    with Ledger(books) as ledger:
        assert ledger.starts == 2 and ledger.paid_count == 3
        assert [e.token for e in ledger.paid()] == [r.token for r in first]
        async with (
            P2apstSimulator(METERS, ledger=ledger, seed=7) as sim,
            SqliteStore(tmp_path / "two.sqlite") as store,
            _client(sim, store) as client,
        ):
            again = await client.purchase(_request("REF-1"))
            fresh = await client.purchase(_request("REF-NEW"))
            offered_again = await client.inquiry(meter_number=METER.meter_number)
        assert ledger.paid_count == 4
    # REF-1 was paid before: the 2200 got 0088, the token came by advice, the same one.
    assert again.paid and again.via_advice and again.token == first[1].token
    # The reference an inquiry offers after the restart is not one the first run offered
    # (the same seed would otherwise replay them, each then refused as already paid).
    assert offered_first.switcher_reference != offered_again.switcher_reference
    # The new purchase's token identifier is none a meter has already seen.
    assert fresh.paid and _tid(fresh.token) > max(_tid(r.token) for r in first)


def test_an_answer_never_given_is_forgotten_on_reopening(tmp_path: Path) -> None:
    books = tmp_path / "ledger.db"
    now = datetime(2026, 1, 5, 10, 0, tzinfo=WIB)
    with Ledger(books) as ledger:
        assert ledger.claim("REF-A", METER.meter_number, "100000", now)
        assert ledger.claim("REF-B", METER.meter_number, "100000", now)
        ledger.finish("REF-B", LedgerState.PAID, ResponseCode.SUCCESS, "48", token="1" * 20)
        # REF-A: the process died between claim and answer.
    with Ledger(books) as ledger:
        assert ledger.get("REF-A") is None  # an advice gets 0063; the 2200 may come again
        entry = ledger.get("REF-B")
        assert entry is not None and entry.token == "1" * 20 and entry.bit48 == "48"
        assert not ledger.claim("REF-B", METER.meter_number, "100000", now)


def test_a_ledger_under_another_key_or_layout_is_refused_clearly(tmp_path: Path) -> None:
    books = tmp_path / "ledger.db"
    now = datetime(2026, 1, 5, 10, 0, tzinfo=WIB)
    with Ledger(books, key=b"k" * 32) as ledger:
        ledger.claim("REF-A", METER.meter_number, "100000", now)
        ledger.finish("REF-A", LedgerState.PAID, ResponseCode.SUCCESS, "48", token="1" * 20)
    with pytest.raises(LedgerError, match="another key"):
        Ledger(books, key=b"x" * 32)
    with pytest.raises(LedgerError, match="32 bytes"):
        Ledger(books, key=b"short")
    old = tmp_path / "old.db"  # what the simulator wrote before its books were sealed
    with sqlite3.connect(old) as db:
        db.execute("CREATE TABLE purchases (switcher_reference TEXT PRIMARY KEY, token TEXT)")
    with pytest.raises(LedgerError, match="older simulator"):
        Ledger(old)
    loose = tmp_path / "loose.db"
    Ledger(loose).close()
    Path(f"{loose}.key").chmod(0o644)
    with pytest.raises(LedgerError, match="chmod 600"):
        Ledger(loose)


def test_an_in_memory_ledger_counts_from_nothing() -> None:
    with Ledger() as ledger:
        assert ledger.starts == 1 and ledger.paid_count == 0
