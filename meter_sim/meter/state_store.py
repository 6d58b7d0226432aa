"""What a simulated meter must remember across restarts, in SQLite.

A meter saves before every answer leaves it: the advanced invocation counter, the replay
window, the credit and the accepted TIDs are written in one transaction with the token
result, so a crash can neither reuse a counter nor forget that a token was credited.
One database file holds any number of meters (a fleet shares one).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from types import TracebackType

from firmware_protocol.frames import EndpointState, TokenOutcome

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meter_state (
    meter_number TEXT PRIMARY KEY,
    state TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS token_result (
    meter_number TEXT NOT NULL,
    reference INTEGER NOT NULL,
    token TEXT NOT NULL,
    outcome INTEGER NOT NULL,
    tid INTEGER,
    added_kwh TEXT NOT NULL,
    credit_kwh TEXT NOT NULL,
    at TEXT NOT NULL,
    PRIMARY KEY (meter_number, reference, token)
);
"""


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """One TOKEN_DELIVERY the meter answered (the first answer per reference and token)."""

    reference: int
    token: str
    outcome: TokenOutcome
    tid: int | None
    added_kwh: Decimal
    credit_kwh: Decimal  # credit after the token
    at: datetime  # meter clock


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
        self._db = sqlite3.connect(str(path), isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # Durable against a crash of the simulator process (what the tests and the demo
        # restart), without an fsync per frame for a fleet of thousands.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

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
            "SELECT reference, token, outcome, tid, added_kwh, credit_kwh, at "
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
                    "INSERT INTO token_result (meter_number, reference, token, outcome, tid, "
                    "added_kwh, credit_kwh, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        snapshot.meter_number,
                        record.reference,
                        record.token,
                        int(record.outcome),
                        record.tid,
                        str(record.added_kwh),
                        str(record.credit_kwh),
                        record.at.isoformat(),
                    ),
                )
