"""What a simulated meter must remember across restarts, in SQLite.

A meter saves before every answer leaves it: the advanced invocation counter, the replay
window, the credit and the accepted TIDs are written in one transaction with the token
result, so a crash can neither reuse a counter nor forget that a token was credited.
One database file holds any number of meters (a fleet shares one).

No token rests in the file in clear (issue 16): a token result is kept by the token's
SHA-256 (`token_digest`), which is all the meter needs after a restart (a token it took is
refused as USED by its TID, and a re-sent delivery is found by reference and digest) and
all the customers' ledger needs (receipts are compared with credits by digest). The clear
token stays on the in-memory record of the process that took it (`TokenRecord.token`). A
file written before this kept clear tokens: it is converted when opened, then vacuumed
and its WAL truncated, so the old bytes are in neither file. The file and its -wal/-shm
are private to the user (0600), and freed pages are zeroed (secure_delete).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from types import TracebackType

from firmware_protocol.frames import EndpointState, TokenOutcome

_METER_STATE = """
CREATE TABLE IF NOT EXISTS meter_state (
    meter_number TEXT PRIMARY KEY,
    state TEXT NOT NULL
)"""
_TOKEN_RESULT = """
CREATE TABLE IF NOT EXISTS token_result (
    meter_number TEXT NOT NULL,
    reference INTEGER NOT NULL,
    token_sha256 TEXT NOT NULL,
    outcome INTEGER NOT NULL,
    tid INTEGER,
    added_kwh TEXT NOT NULL,
    credit_kwh TEXT NOT NULL,
    at TEXT NOT NULL,
    PRIMARY KEY (meter_number, reference, token_sha256)
)"""

# What a file made before issue 16 has: the token in clear.
_OLD_COLUMNS = "meter_number, reference, token, outcome, tid, added_kwh, credit_kwh, at"
_NEW_COLUMNS = "meter_number, reference, token_sha256, outcome, tid, added_kwh, credit_kwh, at"


def token_digest(token: str) -> str:
    """What the store keeps of a token, and what records and receipts are compared by."""
    return hashlib.sha256(token.encode("ascii")).hexdigest()


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """One TOKEN_DELIVERY the meter answered (the first answer per reference and token)."""

    reference: int
    digest: str  # token_digest(token): all the store keeps of the token
    outcome: TokenOutcome
    tid: int | None
    added_kwh: Decimal
    credit_kwh: Decimal  # credit after the token
    at: datetime  # meter clock
    #: The token itself, in memory only: None on a record read back from the store.
    token: str | None = field(default=None, compare=False)

    @classmethod
    def of(
        cls,
        reference: int,
        token: str,
        outcome: TokenOutcome,
        tid: int | None,
        added_kwh: Decimal,
        credit_kwh: Decimal,
        at: datetime,
    ) -> TokenRecord:
        return cls(reference, token_digest(token), outcome, tid, added_kwh, credit_kwh, at, token)


@dataclass(frozen=True, slots=True)
class MeterSnapshot:
    meter_number: str
    credit_kwh: Decimal
    energy_kwh: Decimal
    tids: tuple[int, ...]
    tamper: bool
    relay_closed: bool
    mains_on: bool
    endpoint: EndpointState
    next_message_id: int
    reporting_interval_min: int
    low_credit_threshold_kwh: Decimal
    clock_offset_s: float
    low_credit_alarmed: bool
    last_tick: datetime | None
    next_telemetry_at: datetime | None

    def to_json(self) -> str:
        return json.dumps(
            {
                "credit_kwh": str(self.credit_kwh),
                "energy_kwh": str(self.energy_kwh),
                "tids": list(self.tids),
                "tamper": self.tamper,
                "relay_closed": self.relay_closed,
                "mains_on": self.mains_on,
                "key_id": self.endpoint.key_id,
                "next_counter": self.endpoint.next_counter,
                "replay": self.endpoint.replay.hex(),
                "next_message_id": self.next_message_id,
                "reporting_interval_min": self.reporting_interval_min,
                "low_credit_threshold_kwh": str(self.low_credit_threshold_kwh),
                "clock_offset_s": self.clock_offset_s,
                "low_credit_alarmed": self.low_credit_alarmed,
                "last_tick": _time_out(self.last_tick),
                "next_telemetry_at": _time_out(self.next_telemetry_at),
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, meter_number: str, text: str) -> MeterSnapshot:
        d = json.loads(text)
        return cls(
            meter_number=meter_number,
            credit_kwh=Decimal(d["credit_kwh"]),
            energy_kwh=Decimal(d["energy_kwh"]),
            tids=tuple(int(t) for t in d["tids"]),
            tamper=bool(d["tamper"]),
            relay_closed=bool(d["relay_closed"]),
            mains_on=bool(d["mains_on"]),
            endpoint=EndpointState(
                int(d["key_id"]), int(d["next_counter"]), bytes.fromhex(d["replay"])
            ),
            next_message_id=int(d["next_message_id"]),
            reporting_interval_min=int(d["reporting_interval_min"]),
            low_credit_threshold_kwh=Decimal(d["low_credit_threshold_kwh"]),
            clock_offset_s=float(d["clock_offset_s"]),
            low_credit_alarmed=bool(d["low_credit_alarmed"]),
            last_tick=_time_in(d["last_tick"]),
            next_telemetry_at=_time_in(d["next_telemetry_at"]),
        )


def _time_out(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _time_in(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value is not None else None


class StateStore:
    """`with StateStore(path) as store:`; `":memory:"` keeps nothing beyond the process."""

    def __init__(self, path: str | Path) -> None:
        name = str(path)
        _create_private(name)
        self._db = sqlite3.connect(name, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # Durable against a crash of the simulator process (what the tests and the demo
        # restart), without an fsync per frame for a fleet of thousands.
        self._db.execute("PRAGMA synchronous=NORMAL")
        # A deleted row's bytes are overwritten with zeros, not left in a free page.
        self._db.execute("PRAGMA secure_delete=ON")
        self._convert_clear_tokens()
        self._db.execute(_METER_STATE)
        self._db.execute(_TOKEN_RESULT)
        _make_private(name)  # -wal/-shm of a file made before files were 0600

    def _convert_clear_tokens(self) -> None:
        """A file from before issue 16 keeps tokens in clear: keep their digests instead,
        then rewrite the file (VACUUM) and empty the WAL, so no old page holds them."""
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(token_result)")}
        if "token" not in columns:
            return
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            rows = self._db.execute(
                f"SELECT {_OLD_COLUMNS} FROM token_result ORDER BY rowid"
            ).fetchall()
            self._db.execute("ALTER TABLE token_result RENAME TO token_result_clear")
            self._db.execute(_TOKEN_RESULT)
            self._db.executemany(
                f"INSERT OR IGNORE INTO token_result ({_NEW_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(r[0], r[1], token_digest(str(r[2])), *r[3:]) for r in rows],
            )
            self._db.execute("DROP TABLE token_result_clear")
        self._db.execute("VACUUM")
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def __enter__(self) -> StateStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

    def load(self, meter_number: str) -> MeterSnapshot | None:
        row = self._db.execute(
            "SELECT state FROM meter_state WHERE meter_number = ?", (meter_number,)
        ).fetchone()
        return MeterSnapshot.from_json(meter_number, row[0]) if row else None

    def token_records(self, meter_number: str) -> list[TokenRecord]:
        rows = self._db.execute(
            "SELECT reference, token_sha256, outcome, tid, added_kwh, credit_kwh, at "
            "FROM token_result WHERE meter_number = ? ORDER BY rowid",
            (meter_number,),
        ).fetchall()
        return [
            TokenRecord(
                int(r[0]),
                str(r[1]),
                TokenOutcome(int(r[2])),
                None if r[3] is None else int(r[3]),
                Decimal(r[4]),
                Decimal(r[5]),
                datetime.fromisoformat(r[6]),
            )
            for r in rows
        ]

    def save(self, snapshot: MeterSnapshot, record: TokenRecord | None = None) -> None:
        """Write the meter's state (and a new token result) in one transaction."""
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(
                "INSERT INTO meter_state (meter_number, state) VALUES (?, ?) "
                "ON CONFLICT (meter_number) DO UPDATE SET state = excluded.state",
                (snapshot.meter_number, snapshot.to_json()),
            )
            if record is not None:
                self._db.execute(
                    f"INSERT INTO token_result ({_NEW_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        snapshot.meter_number,
                        record.reference,
                        record.digest,
                        int(record.outcome),
                        record.tid,
                        str(record.added_kwh),
                        str(record.credit_kwh),
                        record.at.isoformat(),
                    ),
                )


def _create_private(path: str) -> None:
    """Creates the file 0600 before SQLite does (SQLite would make it 0644 under the usual
    umask; its -wal and -shm then take the file's mode), as gateway/durable_file.py does."""
    if path in ("", ":memory:"):
        return
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))


def _make_private(path: str) -> None:
    if path in ("", ":memory:"):
        return
    for name in (path, f"{path}-wal", f"{path}-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.chmod(name, 0o600)
