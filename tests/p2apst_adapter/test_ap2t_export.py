"""The AP2T batch file: identical re-exports, ordering, corrections, flat memory."""

from __future__ import annotations

import csv
import dataclasses
import tracemalloc
from datetime import date
from pathlib import Path

import pytest

from p2apst_adapter.ap2t import COLUMNS, Manifest, export_batch
from p2apst_adapter.ap2t.export import ExportError, verify
from tests.ap2t_support import synthetic_records

DAY = date(2026, 11, 20)


async def test_re_exporting_a_day_of_100000_meters_gives_the_identical_file(
    tmp_path: Path,
) -> None:
    first = await export_batch(DAY, synthetic_records(DAY, 100_000), tmp_path / "a")
    second = await export_batch(DAY, synthetic_records(DAY, 100_000), tmp_path / "b")
    assert first == second
    assert first.record_count == 100_000
    a = (tmp_path / "a" / first.file).read_bytes()
    assert a == (tmp_path / "b" / second.file).read_bytes()
    manifest_a = (tmp_path / "a" / "ap2t-20261120.manifest.json").read_text()
    assert manifest_a == (tmp_path / "b" / "ap2t-20261120.manifest.json").read_text()
    verify(tmp_path / "a" / first.file, Manifest.from_json(manifest_a))


async def test_the_file_has_the_documented_columns(tmp_path: Path) -> None:
    manifest = await export_batch(DAY, synthetic_records(DAY, 3), tmp_path)
    with (tmp_path / manifest.file).open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == [column.name for column in COLUMNS]
    assert rows[0]["meter_number"] == "14000000000"
    assert rows[0]["last_reading_at"].endswith("Z")
    assert len(rows) == manifest.record_count == 3


async def test_memory_stays_flat_as_the_meter_count_grows(tmp_path: Path) -> None:
    async def peak(count: int) -> int:
        tracemalloc.start()
        try:
            await export_batch(DAY, synthetic_records(DAY, count), tmp_path / str(count))
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    small, large = await peak(5_000), await peak(50_000)
    # Ten times the meters must not need anywhere near ten times the memory.
    assert large < small * 2


async def test_out_of_order_or_repeated_meters_are_refused_and_leave_no_file(
    tmp_path: Path,
) -> None:
    records = list(synthetic_records(DAY, 3))
    with pytest.raises(ExportError, match="out of order or repeated"):
        await export_batch(DAY, [records[0], records[2], records[1]], tmp_path)
    with pytest.raises(ExportError, match="out of order or repeated"):
        await export_batch(DAY, [records[0], records[0]], tmp_path)
    assert list(tmp_path.iterdir()) == []


async def test_a_record_of_another_day_must_be_marked_as_a_correction(tmp_path: Path) -> None:
    late = next(synthetic_records(date(2026, 11, 18), 1))
    with pytest.raises(ExportError, match="in the batch of"):
        await export_batch(DAY, [late], tmp_path)
    correction = dataclasses.replace(late, correction_of=late.day)
    manifest = await export_batch(DAY, [*synthetic_records(DAY, 2), correction], tmp_path)
    assert manifest.corrections == 1 and manifest.record_count == 3
    rows = list(csv.DictReader((tmp_path / manifest.file).open(encoding="utf-8")))
    assert rows[-1]["correction_of"] == "2026-11-18" and rows[-1]["date"] == "2026-11-18"


async def test_a_tampered_file_fails_verification(tmp_path: Path) -> None:
    manifest = await export_batch(DAY, synthetic_records(DAY, 10), tmp_path)
    path = tmp_path / manifest.file
    path.write_bytes(path.read_bytes().replace(b"14000000000", b"14000000001"))
    with pytest.raises(ExportError, match="SHA-256"):
        verify(path, manifest)


async def test_async_record_sources_stream_too(tmp_path: Path) -> None:
    async def source():  # type: ignore[no-untyped-def]
        for record in synthetic_records(DAY, 1000):
            yield record

    seen: list[int] = []
    manifest = await export_batch(DAY, source(), tmp_path, progress=seen.append)
    assert manifest.record_count == 1000 and seen[-1] == 1000
