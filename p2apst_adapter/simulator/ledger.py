"""The simulator's books: every purchase by switcher reference, tokens' TIDs, reports.

The stdlib `sqlite3` is enough here: each call is a single small statement on a local
file, and the simulator is a test and demo tool, not a production service.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from types import TracebackType

_SCHEMA = """
CREATE TABLE IF NOT EXISTS purchases (
    switcher_reference TEXT PRIMARY KEY,
    meter_number TEXT NOT NULL,
    amount TEXT NOT NULL,
    state TEXT NOT NULL,
    response_code TEXT,
    bit48 TEXT,
    bit62 TEXT,
    token TEXT,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meter_tids (
    meter_number TEXT PRIMARY KEY,
    last_issue TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS reports (
    report_id TEXT PRIMARY KEY,
    bit48 TEXT NOT NULL,
    received_at TEXT NOT NULL,
    times_received INTEGER NOT NULL DEFAULT 1
);
"""

_ONE_MINUTE = timedelta(minutes=1)


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
    def __init__(self, path: str | Path = ":memory:") -> None:
        self._db = sqlite3.connect(str(path), isolation_level=None)
        self._db.executescript(_SCHEMA)

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
        self._db.execute(
            "UPDATE purchases SET state = ?, response_code = ?, bit48 = ?, bit62 = ?, token = ?"
            " WHERE switcher_reference = ?",
            (state, code, bit48, bit62, token, reference),
        )

    def get(self, reference: str) -> LedgerEntry | None:
        row = self._db.execute(
            "SELECT switcher_reference, meter_number, amount, state, response_code, bit48,"
            " bit62, token FROM purchases WHERE switcher_reference = ?",
            (reference,),
        ).fetchone()
        return None if row is None else _entry(row)

    def paid(self) -> Sequence[LedgerEntry]:
        rows = self._db.execute(
            "SELECT switcher_reference, meter_number, amount, state, response_code, bit48,"
            " bit62, token FROM purchases WHERE state = ? ORDER BY created_at",
            (LedgerState.PAID,),
        ).fetchall()
        return [_entry(row) for row in rows]

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

    def record_report(self, report_id: str, bit48: str, now: datetime) -> bool:
        """Stores a token report once; True the first time `report_id` is seen."""
        self._db.execute(
            "INSERT INTO reports (report_id, bit48, received_at) VALUES (?, ?, ?)"
            " ON CONFLICT(report_id) DO UPDATE SET times_received = times_received + 1",
            (report_id, bit48, now.isoformat()),
        )
        row = self._db.execute(
            "SELECT times_received FROM reports WHERE report_id = ?", (report_id,)
        ).fetchone()
        return bool(row[0] == 1)

    def reports(self) -> Sequence[tuple[str, str, int]]:
        """(report_id, bit48, times received) of every report, oldest first."""
        rows = self._db.execute(
            "SELECT report_id, bit48, times_received FROM reports ORDER BY received_at"
        ).fetchall()
        return [(str(r[0]), str(r[1]), int(r[2])) for r in rows]


def _entry(row: tuple[object, ...]) -> LedgerEntry:
    reference, meter, amount, state, code, bit48, bit62, token = row
    return LedgerEntry(
        switcher_reference=str(reference),
        meter_number=str(meter),
        amount=str(amount),
        state=LedgerState(str(state)),
        response_code=None if code is None else str(code),
        bit48=None if bit48 is None else str(bit48),
        bit62=None if bit62 is None else str(bit62),
        token=None if token is None else str(token),
    )
