"""Exporting 20,000 meters stays flat in memory: the peak is about that of 2,000 meters."""

from __future__ import annotations

import tracemalloc
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from operator_data.ap2t_source import Ap2tJob, day_bounds
from operator_data.store import Store, schema
from tests.operator_data.reporting_seed import insert_meters, insert_rows, meter_number

pytestmark = pytest.mark.timeout(120)

DAY = date(2026, 3, 2)


async def seed(store: Store, count: int) -> None:
    start, _ = day_bounds(DAY)
    async with store.begin() as conn:
        await insert_meters(conn, range(count), datetime(2026, 1, 1, tzinfo=UTC))
        await insert_rows(
            conn,
            schema.telemetry_readings,
            [
                {
                    "meter_number": meter_number(n),
                    "meter_time": start + timedelta(hours=h, seconds=n % 3600),
                    "received_at": start + timedelta(hours=h, seconds=n % 3600 + 20),
                    "total_kwh": f"{n % 1000 + h}.5",
                    "credit_kwh": "12.25",
                }
                for n in range(count)
                for h in (-3, 10)
            ],
        )


async def peak_bytes(tmp_path: Path, count: int) -> int:
    url = f"sqlite+aiosqlite:///{tmp_path / f'm{count}.db'}"
    async with Store(url) as store:
        await store.migrate()
        await seed(store, count)
        job = Ap2tJob(
            store, tmp_path / f"out{count}", clock=lambda: datetime(2026, 3, 4, tzinfo=UTC)
        )
        tracemalloc.start()
        try:
            batch = await job.export(DAY)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert batch.manifest.record_count == count
    return peak


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_memory_is_flat_in_the_number_of_meters(tmp_path: Path, backend: str) -> None:
    small = await peak_bytes(tmp_path, 2_000)
    large = await peak_bytes(tmp_path, 20_000)
    # Ten times the meters; a loader that held them all would need ~10x the memory.
    assert large < small * 1.5, (small, large)
