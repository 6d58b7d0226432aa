"""Streams a day's records to `ap2t-YYYYMMDD.csv` and writes its manifest.

Re-exporting the same records gives a byte-identical file and manifest: rows must come in
(correction_of is None first, then) meter-number order, the manifest carries no wall-clock
time, and the file is written to a temporary name and renamed, so a crash never leaves a
half batch under the final name.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
import os
from collections.abc import AsyncIterable, Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path

from p2apst_adapter.ap2t.records import COLUMNS, SCHEMA_VERSION, DailyRecord, render

_FLUSH_BYTES = 1 << 16


class ExportError(ValueError):
    """The records cannot make a valid batch (wrong day, out of order, duplicated meter)."""


@dataclass(frozen=True, slots=True)
class Manifest:
    schema_version: int
    date: str
    file: str
    record_count: int
    corrections: int
    sha256: str

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        return cls(**json.loads(text))


def batch_name(day: date) -> str:
    return f"ap2t-{day:%Y%m%d}"


class _BatchWriter:
    def __init__(self, day: date, out_dir: Path) -> None:
        self.day = day
        self.path = out_dir / f"{batch_name(day)}.csv"
        self._tmp = self.path.with_suffix(".csv.tmp")
        # Customer data (meters, customers, consumption): readable by its owner only.
        self._file = os.fdopen(
            os.open(self._tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb"
        )
        self._digest = hashlib.sha256()
        self._buffer = io.StringIO()
        self._csv = csv.writer(self._buffer, lineterminator="\n")
        self._last_key: tuple[bool, str, str] | None = None
        self.count = 0
        self.corrections = 0
        self._csv.writerow([column.name for column in COLUMNS])

    def add(self, record: DailyRecord) -> None:
        if record.correction_of is None and record.day != self.day:
            raise ExportError(
                f"record of {record.day} for meter {record.meter_number} in the batch of {self.day}"
            )
        correction_day = record.correction_of.isoformat() if record.correction_of else ""
        key = (record.correction_of is not None, correction_day, record.meter_number)
        if self._last_key is not None and key <= self._last_key:
            raise ExportError(
                f"meter {record.meter_number} is out of order or repeated after "
                f"{self._last_key[2]}: records must come sorted by (correction, day, meter number)"
            )
        self._last_key = key
        self._csv.writerow(render(record))
        self.count += 1
        self.corrections += record.correction_of is not None
        if self._buffer.tell() >= _FLUSH_BYTES:
            self._flush()

    def _flush(self) -> None:
        data = self._buffer.getvalue().encode("utf-8")
        self._digest.update(data)
        self._file.write(data)
        self._buffer.seek(0)
        self._buffer.truncate()

    def finish(self) -> Manifest:
        self._flush()
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        os.replace(self._tmp, self.path)
        manifest = Manifest(
            schema_version=SCHEMA_VERSION,
            date=self.day.isoformat(),
            file=self.path.name,
            record_count=self.count,
            corrections=self.corrections,
            sha256=self._digest.hexdigest(),
        )
        manifest_path = self.path.with_name(f"{batch_name(self.day)}.manifest.json")
        tmp = manifest_path.with_suffix(".json.tmp")
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as out:
            out.write(manifest.to_json())
        os.replace(tmp, manifest_path)
        return manifest

    def abort(self) -> None:
        self._file.close()
        self._tmp.unlink(missing_ok=True)


async def export_batch(
    day: date,
    records: AsyncIterable[DailyRecord] | Iterable[DailyRecord],
    out_dir: Path,
    progress: Callable[[int], None] | None = None,
) -> Manifest:
    """Writes the batch of `day`; memory stays flat however many records come."""
    await asyncio.to_thread(out_dir.mkdir, parents=True, exist_ok=True)
    writer = _BatchWriter(day, out_dir)
    try:
        if isinstance(records, AsyncIterable):
            async for record in records:
                writer.add(record)
                if progress is not None:
                    progress(writer.count)
        else:
            for record in records:
                writer.add(record)
                if progress is not None:
                    progress(writer.count)
        return writer.finish()
    except BaseException:
        writer.abort()
        raise


def verify(csv_path: Path, manifest: Manifest) -> None:
    """Raises ExportError unless the file matches its manifest (hash and row count)."""
    digest = hashlib.sha256()
    rows = -1  # the header
    with csv_path.open("rb") as handle:
        for line in handle:
            digest.update(line)
            rows += 1
    if digest.hexdigest() != manifest.sha256:
        raise ExportError(f"{csv_path.name}: SHA-256 does not match the manifest")
    if rows != manifest.record_count:
        raise ExportError(
            f"{csv_path.name}: {rows} rows, the manifest says {manifest.record_count}"
        )
