"""The P2APST client's SQLite journal keeps no secret in clear (issue 16): its files are 0600
whatever the umask, and a paid result's token and a token report's token are sealed in the
file and its WAL, as the hub's journal seals them."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from p2apst_adapter.client import SqliteStore
from p2apst_adapter.client.journal import JournalEntry
from p2apst_adapter.client.sqlite_store import SealedValueError
from p2apst_adapter.model import PurchaseRequest, PurchaseResult, TokenReason, TokenReport

pytestmark = pytest.mark.timeout(60)

TOKEN = "56781234901287654321"  # 20 digits, as P2APST sends a token
OTHER_TOKEN = "11112222333344445555"
AT = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture(autouse=True)
def open_umask() -> Iterator[None]:
    """The usual umask of a service account: files would be 0644 without our care."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _entry(reference: str = "SW0000000001") -> JournalEntry:
    request = PurchaseRequest(
        switcher_reference=reference,
        meter_number="14000000001",
        amount=Decimal(100_000),
        customer_name="Pelanggan Satu",
    )
    return JournalEntry(request=request, stan="000001", sent_at=AT)


def _paid(reference: str = "SW0000000001", token: str = TOKEN) -> PurchaseResult:
    return PurchaseResult(reference, "00", token=token, kwh=Decimal("66.7"))


def _report(report_id: str = "R0000000001", token: str = OTHER_TOKEN) -> TokenReport:
    return TokenReport(
        report_id=report_id,
        meter_number="14000000001",
        switcher_reference="SW0000000001",
        token=token,
        accepted=True,
        reason=TokenReason.ACCEPTED,
        event_time=AT,
        credit_kwh=Decimal("70.0"),
    )


def _files(directory: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in directory.iterdir() if path.is_file()}


def _no_clear_token(directory: Path) -> None:
    for name, data in _files(directory).items():
        for token in (TOKEN, OTHER_TOKEN):
            assert token.encode() not in data, f"{name} holds token {token} in clear"


async def test_the_journal_files_are_0600_and_hold_no_clear_token(tmp_path: Path) -> None:
    directory = tmp_path / "journal"
    directory.mkdir()
    path = directory / "journal.sqlite"
    async with SqliteStore(path) as store:
        await store.journal.begin(_entry())
        await store.journal.complete("SW0000000001", _paid())
        assert await store.outbox.add(_report())
        # Open, in WAL mode: the database, its -wal and -shm, and the store's key file.
        assert {name: _mode(directory / name) for name in _files(directory)} == {
            "journal.sqlite": 0o600,
            "journal.sqlite-wal": 0o600,
            "journal.sqlite-shm": 0o600,
            "journal.sqlite.key": 0o600,
        }
        _no_clear_token(directory)  # the WAL holds the rows now
        # What the client reads back is whole.
        stored = await store.journal.get("SW0000000001")
        assert stored is not None and stored.result == _paid()
        assert await store.outbox.unacknowledged() == [_report()]
    _no_clear_token(directory)  # after the close's checkpoint: the database file
    # The request (no secret in it) stays readable; the result and report do not.
    raw = sqlite3.connect(path)
    try:
        request, result = raw.execute("SELECT request, result FROM p2apst_purchases").fetchone()
    finally:
        raw.close()
    assert json.loads(request)["meter_number"] == "14000000001"
    assert isinstance(result, bytes) and b"Pelanggan" not in result
    # Reopened (a restart): the same key file opens what the last process sealed.
    async with SqliteStore(path) as store:
        again = await store.journal.get("SW0000000001")
        assert again is not None and again.result == _paid()


async def test_an_existing_world_readable_journal_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    async with SqliteStore(path):
        pass
    for each in tmp_path.iterdir():
        each.chmod(0o644)
    async with SqliteStore(path):
        assert {p.name: _mode(p) for p in tmp_path.iterdir()} == {
            name: 0o600
            for name in ("old.sqlite", "old.sqlite-wal", "old.sqlite-shm", "old.sqlite.key")
        }


async def test_rows_written_in_clear_before_are_sealed_on_open(tmp_path: Path) -> None:
    path = tmp_path / "legacy.sqlite"
    async with SqliteStore(path) as store:
        await store.journal.begin(_entry())
    # What an older version wrote: the result and the report as JSON text.
    raw = sqlite3.connect(path)
    try:
        with raw:
            raw.execute("UPDATE p2apst_purchases SET result = ?", (json.dumps(_paid().to_json()),))
            raw.execute(
                "INSERT INTO p2apst_reports (report_id, report, seq) VALUES (?, ?, 1)",
                ("R0000000001", json.dumps(_report().to_json())),
            )
    finally:
        raw.close()
    async with SqliteStore(path) as store:
        stored = await store.journal.get("SW0000000001")
        assert stored is not None and stored.result == _paid()
        assert await store.outbox.unacknowledged() == [_report()]
        _no_clear_token(tmp_path)  # secure_delete, then the WAL checkpointed away


async def test_a_caller_key_is_used_and_a_wrong_key_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "keyed.sqlite"
    key = os.urandom(32)
    async with SqliteStore(path, key=key) as store:
        await store.journal.begin(_entry())
        await store.journal.complete("SW0000000001", _paid())
    assert not Path(f"{path}.key").exists()  # the caller's key: no key file beside it
    _no_clear_token(tmp_path)
    async with SqliteStore(path, key=os.urandom(32)) as store:
        with pytest.raises(SealedValueError, match="does not open under this store's key"):
            await store.journal.get("SW0000000001")
    with pytest.raises(ValueError, match="32 bytes"):
        SqliteStore(path, key=b"short")


async def test_a_sealed_result_moved_to_another_row_does_not_open(tmp_path: Path) -> None:
    path = tmp_path / "moved.sqlite"
    async with SqliteStore(path) as store:
        await store.journal.begin(_entry("SW0000000001"))
        await store.journal.begin(_entry("SW0000000002"))
        await store.journal.complete("SW0000000001", _paid())
    raw = sqlite3.connect(path)
    try:
        with raw:
            raw.execute(
                "UPDATE p2apst_purchases SET result = "
                "(SELECT result FROM p2apst_purchases WHERE key = 'SW0000000001') "
                "WHERE key = 'SW0000000002'"
            )
    finally:
        raw.close()
    async with SqliteStore(path) as store:
        with pytest.raises(SealedValueError, match="SW0000000002"):
            await store.journal.get("SW0000000002")
