"""SQLite implementations of the purchase journal and the report outbox (aiosqlite).

Used by the tests and by a stand-alone adapter; the hub implements the same protocols on
its own database.

Secrets at rest, as the hub's journal keeps them: a paid result and a token report both
name the token, so each is sealed (AES-256-GCM, the row's key as AAD: a sealed value copied
onto another row does not open) and no token is ever written in clear, in the file or its
WAL. Requests carry no secret (no PIN reaches P2APST) and stay readable. The 32-byte key is
the caller's (`key=`, e.g. derived from the operator's master key); without one the store
keeps a random key in `<file>.key` beside it (0600), which keeps tokens out of copies of
the database file and its backups, though not from someone who can read the directory.
The files are created 0600 whatever the umask; rows an older version wrote in clear are
sealed when the store opens (with secure_delete, so the clear pages are overwritten).
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import aiosqlite
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from p2apst_adapter.client.journal import JournalEntry
from p2apst_adapter.model import PurchaseRequest, PurchaseResult, TokenReport

_SCHEMA = """
CREATE TABLE IF NOT EXISTS p2apst_purchases (
    key TEXT PRIMARY KEY,
    request TEXT NOT NULL,
    stan TEXT NOT NULL,
    sent_at TEXT NOT NULL,
    result TEXT,
    seq INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS p2apst_reports (
    report_id TEXT PRIMARY KEY,
    report TEXT NOT NULL,
    acknowledged INTEGER NOT NULL DEFAULT 0,
    seq INTEGER NOT NULL
);
"""


KEY_BYTES = 32
_VERSION = 0x01
_NONCE_BYTES = 12
_TAG_BYTES = 16
_PRIVATE = 0o600


class SealedValueError(ValueError):
    """A sealed row does not open: another key, another row's value, or damaged bytes."""


def _private(path: Path) -> None:
    """Create `path` empty with mode 0600, or take group and other access away from the
    existing file and its SQLite -wal/-shm files (SQLite gives those the database file's
    mode, so a 0600 database file covers all three). The same rule as the hub's store;
    kept here because the adapter imports nothing of the hub."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _PRIVATE))
    except FileExistsError:
        for each in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            try:
                mode = stat.S_IMODE(each.stat().st_mode)
            except FileNotFoundError:
                continue
            if mode & 0o077:
                each.chmod(mode & 0o700)


def _key_file(path: Path) -> bytes:
    """The store's own key in `path`, created 0600 with a random key if missing (written
    aside and linked into place, so no reader ever sees a half-written key file and two
    stores opening at once agree on one key)."""
    if not path.exists():
        aside = path.with_name(f"{path.name}.{os.getpid()}.{os.urandom(4).hex()}")
        fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _PRIVATE)
        try:
            os.write(fd, os.urandom(KEY_BYTES))
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(aside, path)
        except FileExistsError:
            pass  # another store made it first: use that one
        finally:
            aside.unlink()
    _private(path)
    key = path.read_bytes()
    if len(key) != KEY_BYTES:
        raise ValueError(f"{path}: a journal key is {KEY_BYTES} bytes, got {len(key)}")
    return key


class SqliteStore:
    """One SQLite file holding both tables; `journal` and `outbox` share its connection.
    `key` (32 bytes) seals results and reports; None: the store's own key file."""

    def __init__(self, path: str | Path, *, key: bytes | None = None) -> None:
        if key is not None and len(key) != KEY_BYTES:
            raise ValueError(f"the journal key must be {KEY_BYTES} bytes, got {len(key)}")
        self._path = str(path)
        self._key = key
        self._aead: AESGCM | None = None
        self._db: aiosqlite.Connection | None = None
        self.journal = SqlitePurchaseJournal(self)
        self.outbox = SqliteReportOutbox(self)

    def seal(self, data: dict[str, Any], aad: str) -> bytes:
        if self._aead is None:
            raise RuntimeError("the store is not open")
        nonce = os.urandom(_NONCE_BYTES)
        plain = json.dumps(data, sort_keys=True).encode("utf-8")
        return bytes([_VERSION]) + nonce + self._aead.encrypt(nonce, plain, aad.encode())

    def open_sealed(self, sealed: object, aad: str) -> dict[str, Any]:
        if self._aead is None:
            raise RuntimeError("the store is not open")
        if not isinstance(sealed, bytes) or len(sealed) < 1 + _NONCE_BYTES + _TAG_BYTES:
            raise SealedValueError(f"the stored value for {aad!r} is not a sealed value")
        if sealed[0] != _VERSION:
            raise SealedValueError(f"sealed value for {aad!r}: unknown version {sealed[0]}")
        nonce = sealed[1 : 1 + _NONCE_BYTES]
        try:
            plain = self._aead.decrypt(nonce, sealed[1 + _NONCE_BYTES :], aad.encode())
        except InvalidTag:
            raise SealedValueError(
                f"sealed value for {aad!r} does not open under this store's key"
            ) from None
        loaded = json.loads(plain.decode("utf-8"))
        assert isinstance(loaded, dict)
        return loaded

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise RuntimeError("the store is not open")
        return self._db

    async def open(self) -> None:
        path = Path(self._path)
        key = self._key if self._key is not None else _key_file(Path(f"{path}.key"))
        self._aead = AESGCM(key)
        _private(path)
        self._db = await aiosqlite.connect(self._path, isolation_level=None)
        await self._db.execute("PRAGMA journal_mode=WAL")
        await self._db.execute("PRAGMA synchronous=FULL")
        # Freed pages are zeroed: a row sealed in place leaves no clear copy behind.
        await self._db.execute("PRAGMA secure_delete=ON")
        await self._db.executescript(_SCHEMA)
        await self._seal_clear_rows(self._db)

    async def _seal_clear_rows(self, db: aiosqlite.Connection) -> None:
        """Rows an older version wrote in clear (JSON text): sealed in place, once."""
        async with db.execute(
            "SELECT key, result FROM p2apst_purchases WHERE typeof(result) = 'text'"
        ) as cursor:
            results = [(str(k), str(r)) for k, r in await cursor.fetchall()]
        async with db.execute(
            "SELECT report_id, report FROM p2apst_reports WHERE typeof(report) = 'text'"
        ) as cursor:
            reports = [(str(k), str(r)) for k, r in await cursor.fetchall()]
        if not results and not reports:
            return
        await db.execute("BEGIN IMMEDIATE")
        try:
            await db.executemany(
                "UPDATE p2apst_purchases SET result = ? WHERE key = ?",
                [(self.seal(json.loads(text), key), key) for key, text in results],
            )
            await db.executemany(
                "UPDATE p2apst_reports SET report = ? WHERE report_id = ?",
                [(self.seal(json.loads(text), key), key) for key, text in reports],
            )
        except BaseException:
            await db.execute("ROLLBACK")
            raise
        await db.execute("COMMIT")
        # The clear versions may sit in the WAL until a checkpoint copies it over.
        await db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    async def close(self) -> None:
        if self._db is not None:
            await self._db.close()
            self._db = None

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


def _entry(store: SqliteStore, row: aiosqlite.Row | tuple[object, ...]) -> JournalEntry:
    key, request, stan, sent_at, result = row
    return JournalEntry(
        request=PurchaseRequest.from_json(json.loads(str(request))),
        stan=str(stan),
        sent_at=datetime.fromisoformat(str(sent_at)),
        result=(
            None
            if result is None
            else PurchaseResult.from_json(store.open_sealed(result, str(key)))
        ),
    )


class SqlitePurchaseJournal:
    def __init__(self, store: SqliteStore) -> None:
        self._store = store

    async def begin(self, entry: JournalEntry) -> JournalEntry:
        db = self._store.db
        await db.execute(
            "INSERT OR IGNORE INTO p2apst_purchases (key, request, stan, sent_at, seq)"
            " VALUES (?, ?, ?, ?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM p2apst_purchases))",
            (entry.key, json.dumps(entry.request.to_json()), entry.stan, entry.sent_at.isoformat()),
        )
        stored = await self.get(entry.key)
        assert stored is not None
        return stored

    async def complete(self, key: str, result: PurchaseResult) -> None:
        await self._store.db.execute(
            "UPDATE p2apst_purchases SET result = ? WHERE key = ? AND result IS NULL",
            (self._store.seal(result.to_json(), key), key),
        )

    async def advising(self, key: str) -> None:
        return None  # an entry without a result is PENDING, advised on or not

    async def get(self, key: str) -> JournalEntry | None:
        async with self._store.db.execute(
            "SELECT key, request, stan, sent_at, result FROM p2apst_purchases WHERE key = ?",
            (key,),
        ) as cursor:
            row = await cursor.fetchone()
        return None if row is None else _entry(self._store, row)

    async def pending(self) -> Sequence[JournalEntry]:
        async with self._store.db.execute(
            "SELECT key, request, stan, sent_at, result FROM p2apst_purchases"
            " WHERE result IS NULL ORDER BY seq"
        ) as cursor:
            rows = await cursor.fetchall()
        return [_entry(self._store, row) for row in rows]


class SqliteReportOutbox:
    def __init__(self, store: SqliteStore) -> None:
        self._store = store

    async def add(self, report: TokenReport) -> bool:
        cursor = await self._store.db.execute(
            "INSERT OR IGNORE INTO p2apst_reports (report_id, report, seq)"
            " VALUES (?, ?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM p2apst_reports))",
            (report.report_id, self._store.seal(report.to_json(), report.report_id)),
        )
        return cursor.rowcount == 1

    async def unacknowledged(self) -> Sequence[TokenReport]:
        async with self._store.db.execute(
            "SELECT report_id, report FROM p2apst_reports WHERE acknowledged = 0 ORDER BY seq"
        ) as cursor:
            rows = await cursor.fetchall()
        return [TokenReport.from_json(self._store.open_sealed(r, str(i))) for i, r in rows]

    async def acknowledge(self, report_id: str) -> None:
        await self._store.db.execute(
            "UPDATE p2apst_reports SET acknowledged = 1 WHERE report_id = ?", (report_id,)
        )

    async def acknowledge_many(self, report_ids: Sequence[str]) -> None:
        await self._store.db.executemany(
            "UPDATE p2apst_reports SET acknowledged = 1 WHERE report_id = ?",
            [(report_id,) for report_id in report_ids],
        )
