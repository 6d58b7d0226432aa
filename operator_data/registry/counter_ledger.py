"""High-water marks of the hub's frame counters, kept outside the hub database.

A meter's comms key seals every hub -> meter frame with AES-GCM under the IV (system title,
counter). The counter lives in the database (`meters.tx_counter`), so restoring a backup
would hand out counters again under the same key: identical IVs, which leak the XOR of the
plaintexts and let the tag key be recovered. This ledger is a separate SQLite file that a
database restore does not touch. The registry reserves counters from it in blocks: before a
counter beyond the recorded ceiling is handed out, the ceiling is raised by a block and made
durable. At start-up every meter's counter is raised to its ceiling (the rest of the block
is skipped), so after any restore the next counter is above every counter ever used.

The meter -> hub direction has the mirror problem: the replay window (`meters.replay_window`)
rolls back with a restore, so a meter frame accepted after the backup would be accepted
again. The ledger keeps an inbound ceiling per (meter, key) too — every counter accepted is
below it — raised a block (RX_BLOCK) ahead of the highest accepted, durably, before the batch
that accepts it commits. The meter chooses its counters, so a floor raised to that ceiling
would also refuse up to a block of the meter's *next* frames; to spare that after a plain
restart, the last hub worker of the machine to stop cleanly records each meter's exact
high-water mark (`clean`), which a worker's first acceptance from that meter clears again.
At start-up, when no other live worker holds the ledger (`sessions`: one per worker, with its
process id), the window floor is raised to the clean mark where there is one, else to the
ceiling (after a crash: at most a block of the meter's frames refused, never an old one
taken).

Keys are told apart by a fingerprint, HMAC-SHA256 of the meter number under the key itself:
one-way, so the file holds nothing that opens a frame, and independent of the master key.
The ledger also remembers every key a meter has had, so a key is never installed twice.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

BLOCK = 1024  # counters reserved at a time: one durable write per block per meter
# Inbound: the meter picks its counters, and a crash costs up to a block of its next frames
# (see above), so the block is small; one durable write per 64 frames per meter is still
# rare (a meter reporting every 15 minutes: one every 16 hours).
RX_BLOCK = 64
_FINGERPRINT_LABEL = b"pintar comms key fingerprint\x00"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tx_ceilings (
    meter_number TEXT NOT NULL,
    fingerprint BLOB NOT NULL,
    ceiling INTEGER NOT NULL,
    PRIMARY KEY (meter_number, fingerprint)
)
"""
_RX_SCHEMA = """
CREATE TABLE IF NOT EXISTS rx_ceilings (
    meter_number TEXT NOT NULL,
    fingerprint BLOB NOT NULL,
    ceiling INTEGER NOT NULL,
    clean INTEGER,
    PRIMARY KEY (meter_number, fingerprint)
)
"""
_SESSIONS_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    pid INTEGER NOT NULL,
    started TEXT NOT NULL
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


@dataclass(frozen=True, slots=True)
class RxMark:
    """What the ledger knows of the counters accepted from a meter under one key."""

    meter_number: str
    fingerprint: bytes
    ceiling: int  # every counter accepted under this key is below it
    clean: int | None  # all accepted are below it, exactly (set at a clean stop), or unknown

    @property
    def floor(self) -> int:
        """Counters below this may have been accepted: refuse them after a restore."""
        return self.ceiling if self.clean is None else self.clean


@dataclass(frozen=True, slots=True)
class SessionStart:
    session: str  # this worker's id in the ledger
    others_live: bool  # another process holds the ledger: the database is live, not restored
    rx: list[RxMark]  # the inbound marks as they were when this session began


def _started(pid: int) -> str:
    """When process `pid` started (Linux: clock ticks after boot, /proc/PID/stat field 22),
    or "" where that cannot be read: with it, a process id reused by an unrelated process
    after a worker died is not taken for that worker."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    # The command name (field 2) is in parentheses and may hold spaces: count after it.
    fields = stat[stat.rfind(")") + 2 :].split()
    return fields[19] if len(fields) > 19 else ""


def _alive(pid: int, started: str) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process by that id: judge by its start
        pass
    return not started or _started(pid) in ("", started)


def _retrying(step: Callable[[], object], attempts: int = 100) -> None:
    """`step` again while SQLite says the file is locked (another worker opening it), up
    to `attempts` times 50 ms apart; any other error, or the last one, is raised."""
    for attempt in range(attempts):
        try:
            step()
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) and "busy" not in str(error):
                raise
            if attempt + 1 == attempts:
                raise
            time.sleep(0.05)


class CounterLedger:
    """The ledger file; safe to share between threads and processes (SQLite locking)."""

    def __init__(self, path: Path, *, block: int = BLOCK, rx_block: int = RX_BLOCK) -> None:
        if block < 1 or rx_block < 1:
            raise ValueError("block and rx_block must be at least 1")
        self.path = path
        self.block = block
        self.rx_block = rx_block
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Created 0600: fingerprints are not secret, but the file is the hub's state.
            os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
            self._db = sqlite3.connect(
                path, timeout=10.0, check_same_thread=False, isolation_level=None
            )
            self._db.execute("PRAGMA busy_timeout=10000")
            # FULL: a ceiling must be on disk before a frame using a counter below it can
            # leave; WAL keeps concurrent readers (other hub workers) off the writer's back.
            # Switching to WAL and creating the tables can meet another worker opening the
            # same file at the same moment with SQLITE_BUSY at once (no busy wait for
            # those): both are idempotent, so they are tried again.
            _retrying(lambda: self._db.execute("PRAGMA journal_mode=WAL"))
            self._db.execute("PRAGMA synchronous=FULL")
            for schema in (_SCHEMA, _RX_SCHEMA, _SESSIONS_SCHEMA):
                _retrying(functools.partial(self._db.execute, schema))
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

    # -- the meter -> hub direction ---------------------------------------------------

    def rx_marks(self, keys: Collection[tuple[str, bytes]]) -> dict[tuple[str, bytes], RxMark]:
        """The inbound mark of each (meter, fingerprint) the ledger knows."""
        found: dict[tuple[str, bytes], RxMark] = {}
        wanted = list(keys)
        with self._lock:
            try:
                for start in range(0, len(wanted), 400):
                    chunk = wanted[start : start + 400]
                    clause = " OR ".join("(meter_number = ? AND fingerprint = ?)" for _ in chunk)
                    params = [value for pair in chunk for value in pair]
                    query = (
                        "SELECT meter_number, fingerprint, ceiling, clean FROM rx_ceilings WHERE "
                    )
                    for row in self._db.execute(query + clause, params):
                        mark = _rx_mark(row)
                        found[(mark.meter_number, mark.fingerprint)] = mark
            except sqlite3.Error as error:
                raise LedgerError(f"counter ledger {self.path}: {error}") from None
        return found

    def raise_rx(self, ceilings: Mapping[tuple[str, bytes], int]) -> None:
        """Record each inbound ceiling (never lowering one) and forget its clean mark (the
        caller is about to accept from that meter), durably, in one transaction."""
        if not ceilings:
            return
        with self._write() as db:
            db.executemany(
                "INSERT INTO rx_ceilings (meter_number, fingerprint, ceiling, clean) "
                "VALUES (?, ?, ?, NULL) ON CONFLICT (meter_number, fingerprint) "
                "DO UPDATE SET ceiling = max(ceiling, excluded.ceiling), clean = NULL",
                [(meter, fp, ceiling) for (meter, fp), ceiling in ceilings.items()],
            )

    def all_rx(self) -> list[RxMark]:
        with self._lock:
            try:
                rows = self._db.execute(
                    "SELECT meter_number, fingerprint, ceiling, clean FROM rx_ceilings "
                    "ORDER BY meter_number"
                ).fetchall()
            except sqlite3.Error as error:
                raise LedgerError(f"counter ledger {self.path}: {error}") from None
        return [_rx_mark(row) for row in rows]

    def _others_live(self, db: sqlite3.Connection, session: str | None) -> bool:
        rows = [
            (str(i), int(pid), str(started))
            for i, pid, started in db.execute("SELECT id, pid, started FROM sessions")
        ]
        dead = [(i,) for i, pid, started in rows if i != session and not _alive(pid, started)]
        db.executemany("DELETE FROM sessions WHERE id = ?", dead)  # crashed workers
        return any(i != session and (i,) not in dead for i, _, _ in rows)

    def others_live(self, session: str | None = None) -> bool:
        """Whether a live hub worker (other than `session`) holds the ledger."""
        with self._write() as db:
            return self._others_live(db, session)

    def begin_session(self, pid: int | None = None) -> SessionStart:
        """Register a hub worker (of process `pid`, default this one), atomically with the
        marks it applies at start: a worker that starts after it sees it live and leaves
        the windows alone."""
        session = secrets.token_hex(8)  # several workers may share a process (tests, demo)
        with self._write() as db:
            others = self._others_live(db, session)
            rows = db.execute(
                "SELECT meter_number, fingerprint, ceiling, clean FROM rx_ceilings"
            ).fetchall()
            pid = os.getpid() if pid is None else pid
            db.execute(
                "INSERT INTO sessions (id, pid, started) VALUES (?, ?, ?)",
                (session, pid, _started(pid)),
            )
        return SessionStart(session, others, [_rx_mark(row) for row in rows])

    def end_session(self, session: str, clean: Mapping[tuple[str, bytes], int]) -> bool:
        """Unregister a worker stopping cleanly; if no other live worker holds the ledger,
        record `clean` (each meter's highest accepted counter + 1, read from the database
        after the last frame was accepted) in the same transaction. True if recorded."""
        with self._write() as db:
            db.execute("DELETE FROM sessions WHERE id = ?", (session,))
            if self._others_live(db, session):
                return False
            db.executemany(
                "UPDATE rx_ceilings SET clean = ?, ceiling = max(ceiling, ?) "
                "WHERE meter_number = ? AND fingerprint = ?",
                [(mark, mark, meter, fp) for (meter, fp), mark in clean.items()],
            )
        return True


def _rx_mark(row: tuple[object, ...]) -> RxMark:
    meter, fp, ceiling, clean = row
    assert isinstance(fp, bytes) and isinstance(ceiling, int)
    return RxMark(str(meter), fp, ceiling, None if clean is None else int(str(clean)))


__all__ = [
    "BLOCK",
    "RX_BLOCK",
    "Ceiling",
    "CounterLedger",
    "LedgerError",
    "RxMark",
    "SessionStart",
    "fingerprint",
]
