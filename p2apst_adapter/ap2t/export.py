"""Streams a day's records to `ap2t-YYYYMMDD.csv` and writes its manifest.

Re-exporting the same records gives a byte-identical file and manifest: rows must come in
(correction_of is None first, then) meter-number order, the manifest carries no wall-clock
time, and the file is written to a temporary name and renamed, so a crash never leaves a
half batch under the final name.

A day whose content changed after it was exported is sent again as a *revision*
(`ap2t-YYYYMMDD-r2.csv`, `-r3`, ...; the manifest says `revision` and `supersedes`), never
as a rewrite of the file AP2T already has: `stage_batch` writes the records under a
temporary name and only `StagedBatch.publish` gives them a revision's name, so the caller
can compare the checksum with what it exported before choosing the name.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
import os
import tempfile
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
    revision: int = 1  # 2, 3, ...: a correction of the same day's earlier revision
    supersedes: int | None = None  # the revision this one replaces (None for the first)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        return cls(**json.loads(text))


def batch_name(day: date, revision: int = 1) -> str:
    """`ap2t-YYYYMMDD` for a day's first batch, `ap2t-YYYYMMDD-rN` for its revision N."""
    if revision < 1:
        raise ValueError(f"AP2T batch revisions start at 1, got {revision}")
    return f"ap2t-{day:%Y%m%d}" if revision == 1 else f"ap2t-{day:%Y%m%d}-r{revision}"


def _write_private(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as out:
        out.write(text)
    os.replace(tmp, path)


@dataclass(frozen=True, slots=True)
class StagedBatch:
    """A batch written under a temporary name: publish it under a revision, or discard it."""

    day: date
    out_dir: Path
    tmp_path: Path
    record_count: int
    corrections: int
    sha256: str

    def publish(self, revision: int = 1, supersedes: int | None = None) -> Manifest:
        """Rename the file to the revision's name and write its manifest next to it."""
        name = batch_name(self.day, revision)
        path = self.out_dir / f"{name}.csv"
        os.replace(self.tmp_path, path)
        manifest = Manifest(
            schema_version=SCHEMA_VERSION,
            date=self.day.isoformat(),
            file=path.name,
            record_count=self.record_count,
            corrections=self.corrections,
            sha256=self.sha256,
            revision=revision,
            supersedes=supersedes,
        )
        _write_private(self.out_dir / f"{name}.manifest.json", manifest.to_json())
        return manifest

    def discard(self) -> None:
        self.tmp_path.unlink(missing_ok=True)


class _BatchWriter:
    def __init__(self, day: date, out_dir: Path) -> None:
        self.day = day
        self.out_dir = out_dir
        # A name of its own: two exports of one day (two nodes, or a re-export while the
        # scheduled one runs) never write into each other's file. mkstemp makes it 0600:
        # customer data (meters, customers, consumption) is readable by its owner only.
        handle, tmp = tempfile.mkstemp(prefix=f"{batch_name(day)}.", suffix=".csv.tmp", dir=out_dir)
        self._tmp = Path(tmp)
        self._file = os.fdopen(handle, "wb")
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

    def finish(self) -> StagedBatch:
        self._flush()
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        return StagedBatch(
            self.day,
            self.out_dir,
            self._tmp,
            self.count,
            self.corrections,
            self._digest.hexdigest(),
        )

    def abort(self) -> None:
        self._file.close()
        self._tmp.unlink(missing_ok=True)


async def stage_batch(
    day: date,
    records: AsyncIterable[DailyRecord] | Iterable[DailyRecord],
    out_dir: Path,
    progress: Callable[[int], None] | None = None,
) -> StagedBatch:
    """Writes the records of `day` under a temporary name; memory stays flat however many
    records come. The caller publishes or discards the result."""
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


async def export_batch(
    day: date,
    records: AsyncIterable[DailyRecord] | Iterable[DailyRecord],
    out_dir: Path,
    progress: Callable[[int], None] | None = None,
    *,
    revision: int = 1,
    supersedes: int | None = None,
) -> Manifest:
    """Writes the batch of `day` as `revision` (file and manifest)."""
    staged = await stage_batch(day, records, out_dir, progress)
    try:
        return staged.publish(revision, supersedes)
    except BaseException:
        staged.discard()
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
