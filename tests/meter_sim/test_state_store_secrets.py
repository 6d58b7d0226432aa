"""The simulated meters' state file keeps no clear token and is private (issue 16): a meter
still refuses a token it took as USED after a restart, answers a re-sent delivery as the
first time, and the customers' ledger still matches credits with receipts (by digest)."""

from __future__ import annotations

import sqlite3
import stat
from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import cast

import pytest

from firmware_protocol.frames import TokenDelivery, TokenOutcome, TokenResult
from meter_sim.clock import SimClock
from meter_sim.meter.simulated import MeterIdentity, SimulatedMeter
from meter_sim.meter.state_store import StateStore, TokenRecord, token_digest
from meter_sim.network import NetworkProfile, SmsNetwork
from meter_sim.phones import check_ledger
from meter_sim.phones.inbox import Notice, NoticeKind
from meter_sim.phones.phone import SimulatedPhone
from tests.meter_sim.sim_hub import SimHub
from tests.meter_sim.test_simulated_meter import HUB, START, identity, token

pytestmark = pytest.mark.timeout(20)


@dataclass
class Bench:
    clock: SimClock
    network: SmsNetwork
    hub: SimHub
    ident: MeterIdentity
    path: Path

    def meter(self, store: StateStore) -> SimulatedMeter:
        meter = SimulatedMeter(
            self.ident, self.network, store, clock=self.clock, sleep=self.clock.sleep
        )
        meter.attach()
        return meter

    async def deliver(self, meter: SimulatedMeter, reference: int, tok: str) -> TokenResult:
        before = len(self.hub.messages(TokenResult))
        self.hub.send(meter.meter_number, TokenDelivery(reference, tok))
        await self.hub.wait_for(lambda: len(self.hub.messages(TokenResult)) > before)
        result = self.hub.messages(TokenResult)[-1]
        assert isinstance(result, TokenResult)
        return result


def _files(path: Path) -> list[Path]:
    return [p for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists()]


def _holds(path: Path, tok: str) -> list[str]:
    """The files of the store holding the token in clear (whole or in groups of four)."""
    groups = [tok[i : i + 4] for i in range(0, 20, 4)]
    forms = [tok.encode(), " ".join(groups).encode(), "-".join(groups).encode()]
    return [p.name for p in _files(path) if any(f in p.read_bytes() for f in forms)]


def _modes(path: Path) -> dict[str, int]:
    return {p.name: stat.S_IMODE(p.stat().st_mode) for p in _files(path)}


async def _bench(tmp_path: Path) -> tuple[Bench, SmsNetwork]:
    clock = SimClock(START)
    network = SmsNetwork(
        NetworkProfile(retry_interval=600.0, max_attempts=20),
        seed=1,
        clock=clock,
        sleep=clock.sleep,
    )
    ident = identity()
    hub = SimHub(network, HUB)
    hub.add(ident)
    return Bench(clock, network, hub, ident, tmp_path / "meters.db"), network


async def test_a_taken_token_is_refused_after_a_restart_and_not_in_the_file(
    tmp_path: Path,
) -> None:
    bench, network = await _bench(tmp_path)
    tok = token(bench.ident, "15")
    async with network:
        with StateStore(bench.path) as store:
            meter = bench.meter(store)
            first = await bench.deliver(meter, 1, tok)
            assert first.outcome is TokenOutcome.ACCEPTED
            assert meter.credited[0].token == tok  # in memory, for this process
            # while it runs: the file and its WAL, both private, neither holds the token
            assert set(_modes(bench.path)) >= {"meters.db", "meters.db-wal"}
            assert set(_modes(bench.path).values()) == {0o600}
            assert _holds(bench.path, tok) == []
            meter.detach()
        assert _holds(bench.path, tok) == []
        with StateStore(bench.path) as store:  # a restart: a new process on the same file
            again = bench.meter(store)
            (record,) = again.credited
            assert (record.token, record.digest) == (None, token_digest(tok))
            used = await bench.deliver(again, 2, tok)
            assert used.outcome is TokenOutcome.USED
            resent = await bench.deliver(again, 1, tok)  # the same delivery: the same answer
            assert resent.outcome is TokenOutcome.ACCEPTED and resent.added_kwh == 15
            assert again.credit_kwh == 15
            again.detach()
    assert _holds(bench.path, tok) == []
    assert set(_modes(bench.path).values()) == {0o600}


async def test_a_file_with_clear_tokens_is_converted_when_opened(tmp_path: Path) -> None:
    bench, network = await _bench(tmp_path)
    tok = token(bench.ident, "7.5")
    async with network:
        with StateStore(bench.path) as store:
            meter = bench.meter(store)
            assert (await bench.deliver(meter, 9, tok)).outcome is TokenOutcome.ACCEPTED
            meter.detach()
        _as_before_issue_16(bench.path, tok)
        assert _holds(bench.path, tok) == ["meters.db"]
        with StateStore(bench.path) as store:
            assert _holds(bench.path, tok) == []
            assert set(_modes(bench.path).values()) == {0o600}
            again = bench.meter(store)
            assert [r.digest for r in again.credited] == [token_digest(tok)]
            assert (await bench.deliver(again, 10, tok)).outcome is TokenOutcome.USED
            resent = await bench.deliver(again, 9, tok)
            assert resent.outcome is TokenOutcome.ACCEPTED
            again.detach()
    assert _holds(bench.path, tok) == []


def _as_before_issue_16(path: Path, tok: str) -> None:
    """Rewrites the file as the store wrote it before: the token in clear, mode 0644."""
    db = sqlite3.connect(path, isolation_level=None)
    db.executescript(
        f"""
        CREATE TABLE old (
            meter_number TEXT NOT NULL, reference INTEGER NOT NULL, token TEXT NOT NULL,
            outcome INTEGER NOT NULL, tid INTEGER, added_kwh TEXT NOT NULL,
            credit_kwh TEXT NOT NULL, at TEXT NOT NULL,
            PRIMARY KEY (meter_number, reference, token)
        );
        INSERT INTO old SELECT meter_number, reference, '{tok}', outcome, tid, added_kwh,
            credit_kwh, at FROM token_result;
        DROP TABLE token_result;
        ALTER TABLE old RENAME TO token_result;
        PRAGMA wal_checkpoint(TRUNCATE);
        """
    )
    db.close()
    for p in _files(path):
        p.chmod(0o644)


@dataclass
class _Meter:
    meter_number: str
    token_records: Sequence[TokenRecord]


@dataclass
class _Phone:
    received: list[Notice]
    sent: tuple[()] = ()

    def notices(self) -> list[Notice]:
        return self.received


def test_the_ledger_matches_receipts_with_credits_by_digest() -> None:
    taken, stray = "1" * 20, "2" * 20
    records = [
        TokenRecord.of(1, taken, TokenOutcome.ACCEPTED, 1, Decimal(5), Decimal(5), START),
        TokenRecord.of(2, stray, TokenOutcome.ACCEPTED, 2, Decimal(5), Decimal(10), START),
    ]
    reloaded = [replace(r, token=None) for r in records]  # as read back from the store
    assert reloaded == records and all(r.token is None for r in reloaded)
    receipt = Notice(NoticeKind.RECEIPT, "P00001", taken, "14000000001", None)
    phone = cast(SimulatedPhone, _Phone([receipt]))
    for kept in (records, reloaded):  # in the process that took them, and after a restart
        report = check_ledger([phone], [_Meter("14000000001", kept)])
        assert report.receipts_without_credit == ()
        assert len(report.credits_without_receipt) == 1
    assert check_ledger([phone], [_Meter("1", records)]).credits_without_receipt == (stray,)
    named = check_ledger([phone], [_Meter("1", reloaded)]).credits_without_receipt
    assert named == (f"sha256:{token_digest(stray)}",)
