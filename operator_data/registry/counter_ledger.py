"""High-water marks of the hub's frame counters, kept outside the hub database.

A meter's comms key seals every hub -> meter frame with AES-GCM under the IV (system title,
counter). The counter lives in the database (`meters.tx_counter`), so restoring a backup
would hand out counters again under the same key: identical IVs, which leak the XOR of the
plaintexts and let the tag key be recovered. This ledger is a separate SQLite file that a
database restore does not touch. The registry reserves counters from it in blocks: before a
counter beyond the recorded ceiling is handed out, the ceiling is raised by a block and made
durable. At start-up every meter's counter is raised to its ceiling (the rest of the block
is skipped), so after any restore the next counter is above every counter ever used.

Keys are told apart by a fingerprint, HMAC-SHA256 of the meter number under the key itself:
one-way, so the file holds nothing that opens a frame, and independent of the master key.
The ledger also remembers every key a meter has had, so a key is never installed twice.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import sqlite3
import threading
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

BLOCK = 1024  # counters reserved at a time: one durable write per block per meter
_FINGERPRINT_LABEL = b"pintar comms key fingerprint\x00"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tx_ceilings (
    meter_number TEXT NOT NULL,
    fingerprint BLOB NOT NULL,
    ceiling INTEGER NOT NULL,
    PRIMARY KEY (meter_number, fingerprint)
)
"""


class LedgerError(RuntimeError):
    """The ledger file cannot be opened or written (counters are not handed out then)."""


def fingerprint(meter_number: str, key: bytes) -> bytes:
    """16 bytes naming (meter, key) without revealing the key."""
    return hmac.new(key, _FINGERPRINT_LABEL + meter_number.encode(), hashlib.sha256).digest()[:16]


@dataclass(frozen=True, slots=True)
class Ceiling:
    meter_number: str
    fingerprint: bytes
    ceiling: int  # every counter used under this key is below it


class CounterLedger:
    """The ledger file; safe to share between threads and processes (SQLite locking)."""

    def __init__(self, path: Path, *, block: int = BLOCK) -> None:
        if block < 1:
            raise ValueError("block must be at least 1")
        self.path = path
        self.block = block
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Created 0600: fingerprints are not secret, but the file is the hub's state.
            os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            # FULL: a ceiling must be on disk before a frame using a counter below it can
            # leave; WAL keeps concurrent readers (other hub workers) off the writer's back.
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA busy_timeout=10000")
            self._db.execute(_SCHEMA)
        except (OSError, sqlite3.Error) as error:
            raise LedgerError(f"counter ledger {path}: {error}") from None

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
            except sqlite3.Error as error:
                raise LedgerError(f"counter ledger {self.path}: {error}") from None

    def ceilings(self, keys: Collection[tuple[str, bytes]]) -> dict[tuple[str, bytes], int]:
        """The recorded ceiling of each (meter, fingerprint) the ledger knows."""
        found: dict[tuple[str, bytes], int] = {}
        wanted = list(keys)
        with self._lock:
            try:
                for start in range(0, len(wanted), 400):
                    chunk = wanted[start : start + 400]
                    clause = " OR ".join("(meter_number = ? AND fingerprint = ?)" for _ in chunk)
                    params = [value for pair in chunk for value in pair]
                    query = "SELECT meter_number, fingerprint, ceiling FROM tx_ceilings WHERE "
                    for meter, fp, ceiling in self._db.execute(query + clause, params):
                        found[(meter, bytes(fp))] = int(ceiling)
            except sqlite3.Error as error:
                raise LedgerError(f"counter ledger {self.path}: {error}") from None
        return found

    def known(self, meter_number: str, fp: bytes) -> bool:
        return (meter_number, fp) in self.ceilings([(meter_number, fp)])

    def raise_to(self, ceilings: Mapping[tuple[str, bytes], int]) -> None:
        """Record each ceiling (never lowering one), durably, in one transaction."""
        if not ceilings:
            return
        with self._write() as db:
            db.executemany(
                "INSERT INTO tx_ceilings (meter_number, fingerprint, ceiling) VALUES (?, ?, ?) "
                "ON CONFLICT (meter_number, fingerprint) "
                "DO UPDATE SET ceiling = max(ceiling, excluded.ceiling)",
                [(meter, fp, ceiling) for (meter, fp), ceiling in ceilings.items()],
            )

    def all(self) -> list[Ceiling]:
        with self._lock:
            try:
                rows = self._db.execute(
                    "SELECT meter_number, fingerprint, ceiling FROM tx_ceilings "
                    "ORDER BY meter_number"
                ).fetchall()
            except sqlite3.Error as error:
                raise LedgerError(f"counter ledger {self.path}: {error}") from None
        return [Ceiling(str(m), bytes(f), int(c)) for m, f, c in rows]


__all__ = ["BLOCK", "Ceiling", "CounterLedger", "LedgerError", "fingerprint"]
