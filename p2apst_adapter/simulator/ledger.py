"""The simulator's books: every purchase by switcher reference, tokens' TIDs, reports.

The stdlib `sqlite3` is enough here: each call is a single small statement on a local
file, and the simulator is a test and demo tool, not a production service.

On a file the books outlive the process, so that a restarted simulator neither issues a
token again nor forgets a purchase it was paid for (after a kill -9 the demo used to
re-issue tokens the meters had already used). Tokens are secrets: every bit 48 and token
kept here is sealed (AES-256-GCM, the row's key as AAD), never stored in clear; the file
is created 0600 (SQLite gives its -wal/-shm files the same mode).
"""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from types import TracebackType

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

#: Bumped when the file's layout changes; a file of another version is refused.
SCHEMA_VERSION = 2
KEY_BYTES = 32
_NONCE = 12

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS purchases (
    switcher_reference TEXT PRIMARY KEY,
    meter_number TEXT NOT NULL,
    amount TEXT NOT NULL,
    state TEXT NOT NULL,
    response_code TEXT,
    bit48_sealed BLOB,
    bit62 TEXT,
    token_sealed BLOB,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS purchases_state ON purchases (state, created_at);
CREATE TABLE IF NOT EXISTS meter_tids (
    meter_number TEXT PRIMARY KEY,
    last_issue TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS reports (
    report_id TEXT PRIMARY KEY,
    bit48_sealed BLOB NOT NULL,
    received_at TEXT NOT NULL,
    times_received INTEGER NOT NULL DEFAULT 1
);
"""

_ONE_MINUTE = timedelta(minutes=1)
_COLUMNS = (
    "switcher_reference, meter_number, amount, state, response_code, bit48_sealed, bit62,"
    " token_sealed"
)


class LedgerError(ValueError):
    """The ledger file cannot be used: another layout, a foreign key, a damaged value."""


class LedgerState(StrEnum):
    PROCESSING = "processing"  # claimed, not answered yet: an advice now gets 0068
    PAID = "paid"
    DECLINED = "declined"


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    switcher_reference: str
    meter_number: str
    amount: str
    state: LedgerState
    response_code: str | None
    bit48: str | None
    bit62: str | None
    token: str | None


class Ledger:
    """`Ledger()` keeps the books in memory; `Ledger(path, key=...)` in a SQLite file.

    `key` (32 bytes) seals the tokens. Without one, a file ledger keeps its own next to it
    (`<path>.key`, 0600), created on first use; an in-memory ledger draws one at random.
    """

    def __init__(self, path: str | Path = ":memory:", *, key: bytes | None = None) -> None:
        in_memory = str(path) == ":memory:"
        if key is None:
            key = os.urandom(KEY_BYTES) if in_memory else _key_file(Path(f"{path}.key"))
        if len(key) != KEY_BYTES:
            raise LedgerError(f"the ledger key must be {KEY_BYTES} bytes, got {len(key)}")
        self._aead = AESGCM(key)
        if not in_memory:
            _private_file(Path(path))
        self._db = sqlite3.connect(str(path), isolation_level=None)
        try:
            self._open(Path(path) if not in_memory else None)
        except BaseException:
            self._db.close()
            raise

    def _open(self, path: Path | None) -> None:
        db = self._db
        if path is not None:
            # WAL without a sync per statement: a killed process loses nothing committed
            # (only a crash of the machine could), and a busy demo does not wait on fsync.
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
        if "purchases" in tables and "meta" not in tables:
            raise LedgerError(
                f"{path}: a ledger written by an older simulator (tokens in clear); "
                "remove it (and the data directory it belongs to) to start afresh"
            )
        db.executescript(_SCHEMA)
        version = self._meta("schema")
        if version is None:
            self._set_meta("schema", str(SCHEMA_VERSION))
        elif version != str(SCHEMA_VERSION):
            raise LedgerError(
                f"{path}: ledger layout {version}, this simulator reads {SCHEMA_VERSION}"
            )
        sample = db.execute(
            "SELECT bit48_sealed, switcher_reference FROM purchases"
            " WHERE bit48_sealed IS NOT NULL LIMIT 1"
        ).fetchone()
        if sample is not None:  # books sealed under another key fail here, not mid-run
            self._open_text(sample[0], f"bit48/{sample[1]}")
        #: How many times these books were opened, this time included: a restarted
        #: simulator draws its references from a fresh sequence (see server.py).
        self.starts = int(self._meta("starts") or 0) + 1
        self._set_meta("starts", str(self.starts))
        # A purchase claimed but never answered belongs to a process that died between the
        # two statements: nothing was paid, so it is as if the 2200 never arrived (an
        # advice gets 0063, the purchase may be sent again).
        db.execute("DELETE FROM purchases WHERE state = ?", (LedgerState.PROCESSING,))
        self._paid = int(
            db.execute(
                "SELECT count(*) FROM purchases WHERE state = ?", (LedgerState.PAID,)
            ).fetchone()[0]
        )

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- sealing ----------------------------------------------------------------------

    def _seal(self, text: str | None, aad: str) -> bytes | None:
        if text is None:
            return None
        nonce = os.urandom(_NONCE)
        return nonce + self._aead.encrypt(nonce, text.encode("utf-8"), aad.encode())

    def _open_text(self, sealed: object, aad: str) -> str | None:
        if sealed is None:
            return None
        if not isinstance(sealed, bytes) or len(sealed) <= _NONCE:
            raise LedgerError(f"ledger value {aad}: not a sealed value")
        try:
            plain = self._aead.decrypt(sealed[:_NONCE], sealed[_NONCE:], aad.encode())
        except InvalidTag:
            raise LedgerError(
                f"ledger value {aad} does not open: the ledger was sealed under another key"
            ) from None
        return plain.decode("utf-8")

    def _meta(self, name: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return None if row is None else str(row[0])

    def _set_meta(self, name: str, value: str) -> None:
        self._db.execute(
            "INSERT INTO meta (name, value) VALUES (?, ?)"
            " ON CONFLICT(name) DO UPDATE SET value = excluded.value",
            (name, value),
        )

    # --- purchases --------------------------------------------------------------------

    @property
    def paid_count(self) -> int:
        """How many purchases the books hold as paid: kept in memory, so asking costs
        nothing however long the run (the demo's live line asks every few seconds)."""
        return self._paid

    def claim(self, reference: str, meter_number: str, amount: str, now: datetime) -> bool:
        """Reserves `reference` for a new purchase; False if it was ever used before."""
        cursor = self._db.execute(
            "INSERT OR IGNORE INTO purchases (switcher_reference, meter_number, amount, state,"
            " created_at) VALUES (?, ?, ?, ?, ?)",
            (reference, meter_number, amount, LedgerState.PROCESSING, now.isoformat()),
        )
        return cursor.rowcount == 1

    def finish(
        self,
        reference: str,
        state: LedgerState,
        code: str,
        bit48: str,
        bit62: str | None = None,
        token: str | None = None,
    ) -> None:
        cursor = self._db.execute(
            "UPDATE purchases SET state = ?, response_code = ?, bit48_sealed = ?, bit62 = ?,"
            " token_sealed = ? WHERE switcher_reference = ? AND state = ?",
            (
                state,
                code,
                self._seal(bit48, f"bit48/{reference}"),
                bit62,
                self._seal(token, f"token/{reference}"),
                reference,
                LedgerState.PROCESSING,
            ),
        )
        if cursor.rowcount == 1 and state is LedgerState.PAID:
            self._paid += 1

    def get(self, reference: str) -> LedgerEntry | None:
        row = self._db.execute(
            f"SELECT {_COLUMNS} FROM purchases WHERE switcher_reference = ?", (reference,)
        ).fetchone()
        return None if row is None else self._entry(row)

    def paid(self) -> Sequence[LedgerEntry]:
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM purchases WHERE state = ? ORDER BY created_at",
            (LedgerState.PAID,),
        ).fetchall()
        return [self._entry(row) for row in rows]

    def _entry(self, row: tuple[object, ...]) -> LedgerEntry:
        reference, meter, amount, state, code, bit48, bit62, token = row
        return LedgerEntry(
            switcher_reference=str(reference),
            meter_number=str(meter),
            amount=str(amount),
            state=LedgerState(str(state)),
            response_code=None if code is None else str(code),
            bit48=self._open_text(bit48, f"bit48/{reference}"),
            bit62=None if bit62 is None else str(bit62),
            token=self._open_text(token, f"token/{reference}"),
        )

    # --- STS token identifiers --------------------------------------------------------

    def next_issue_minute(self, meter_number: str, now: datetime) -> datetime:
        """The minute to stamp a new token with: a meter refuses a TID it has seen, so two
        tokens for one meter within a minute must not share one."""
        minute = now.replace(second=0, microsecond=0, tzinfo=None)
        row = self._db.execute(
            "SELECT last_issue FROM meter_tids WHERE meter_number = ?", (meter_number,)
        ).fetchone()
        if row is not None:
            last = datetime.fromisoformat(row[0])
            if minute <= last:
                minute = last + _ONE_MINUTE
        self._db.execute(
            "INSERT INTO meter_tids (meter_number, last_issue) VALUES (?, ?)"
            " ON CONFLICT(meter_number) DO UPDATE SET last_issue = excluded.last_issue",
            (meter_number, minute.isoformat()),
        )
        return minute

    # --- token reports ----------------------------------------------------------------

    def record_report(self, report_id: str, bit48: str, now: datetime) -> bool:
        """Stores a token report once; True the first time `report_id` is seen."""
        self._db.execute(
            "INSERT INTO reports (report_id, bit48_sealed, received_at) VALUES (?, ?, ?)"
            " ON CONFLICT(report_id) DO UPDATE SET times_received = times_received + 1",
            (report_id, self._seal(bit48, f"report/{report_id}"), now.isoformat()),
        )
        row = self._db.execute(
            "SELECT times_received FROM reports WHERE report_id = ?", (report_id,)
        ).fetchone()
        return bool(row[0] == 1)

    def reports(self) -> Sequence[tuple[str, str, int]]:
        """(report_id, bit48, times received) of every report, oldest first."""
        rows = self._db.execute(
            "SELECT report_id, bit48_sealed, times_received FROM reports ORDER BY received_at"
        ).fetchall()
        return [(str(r[0]), self._open_text(r[1], f"report/{r[0]}") or "", int(r[2])) for r in rows]


def _private_file(path: Path) -> None:
    """`path` exists with mode 0600 (its -wal/-shm files too, if any are looser)."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        for each in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            try:
                mode = stat.S_IMODE(each.stat().st_mode)
            except FileNotFoundError:
                continue
            if mode & 0o077:
                each.chmod(mode & 0o700)


def _key_file(path: Path) -> bytes:
    """The key kept next to a ledger file: 64 hex digits, created 0600 on first use."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_key(path)
    key = os.urandom(KEY_BYTES)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(key.hex() + "\n")
    return key


def _read_key(path: Path) -> bytes:
    if stat.S_IMODE(path.stat().st_mode) & 0o077:
        raise LedgerError(f"{path}: a key file others can read (chmod 600)")
    text = path.read_text(encoding="ascii").strip()
    if len(text) != 2 * KEY_BYTES or any(c not in "0123456789abcdefABCDEF" for c in text):
        raise LedgerError(f"{path}: a ledger key file holds 64 hex digits")
    return bytes.fromhex(text)
