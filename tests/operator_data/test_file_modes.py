"""Data files are created readable by their owner only (0600), whatever the umask: the
SQLite store with its -wal and -shm files, a registry export, an AP2T batch."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from operator_data.store import Store
from operator_data.store.file_modes import make_private, open_private
from p2apst_adapter.ap2t.export import export_batch

pytestmark = pytest.mark.timeout(60)


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


async def test_a_new_sqlite_store_and_its_wal_files_are_0600(tmp_path: Path) -> None:
    db = tmp_path / "data" / "hub.db"
    async with Store(f"sqlite+aiosqlite:///{db}") as store:
        await store.migrate()
        wal, shm = db.with_name("hub.db-wal"), db.with_name("hub.db-shm")
        assert wal.exists() and shm.exists()  # WAL mode, open: both are there
        assert {p.name: _mode(p) for p in (db, wal, shm)} == {
            "hub.db": 0o600,
            "hub.db-wal": 0o600,
            "hub.db-shm": 0o600,
        }


async def test_an_existing_world_readable_store_is_tightened(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    async with Store(f"sqlite+aiosqlite:///{db}") as store:
        await store.migrate()
    for path in tmp_path.iterdir():
        path.chmod(0o644)
    async with Store(f"sqlite+aiosqlite:///{db}") as store:
        await store.migrate()
        assert {p.name: _mode(p) for p in tmp_path.iterdir()} == {
            name: 0o600 for name in ("old.db", "old.db-wal", "old.db-shm")
        }


def test_make_private_and_open_private(tmp_path: Path) -> None:
    fresh = tmp_path / "fresh"
    make_private(fresh)
    assert _mode(fresh) == 0o600 and fresh.read_bytes() == b""
    shared = tmp_path / "shared.csv"
    shared.write_text("old")
    shared.chmod(0o664)
    with open_private(shared) as out:
        out.write("new")
    assert _mode(shared) == 0o600 and shared.read_text() == "new"


async def test_an_ap2t_batch_is_0600(tmp_path: Path) -> None:
    manifest = await export_batch(date(2026, 1, 2), [], tmp_path / "ap2t")
    assert _mode(tmp_path / "ap2t" / manifest.file) == 0o600
