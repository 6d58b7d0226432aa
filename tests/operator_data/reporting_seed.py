"""Bulk seeding for the reporting tests (SLA, retention, AP2T): plain Core inserts, fast."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from operator_data.store import schema


def meter_number(n: int) -> str:
    return f"{14000000000 + n:011d}"


def customer_id(n: int) -> str:
    return f"{530000000000 + n:012d}"


def _chunks(rows: list[dict[str, Any]], size: int = 5000) -> Iterator[list[dict[str, Any]]]:
    for index in range(0, len(rows), size):
        yield rows[index : index + size]


async def insert_meters(conn: AsyncConnection, numbers: range, at: datetime) -> None:
    """One customer and one active meter per n (executemany, in chunks)."""
    customers = [
        {
            "customer_id": customer_id(n),
            "name": f"Pelanggan {n}",
            "tariff_segment": "R1",
            "power_va": 1300,
            "status": "active",
            "opted_out": False,
            "opted_out_at": None,
            "inactive_since": None,
            "created_at": at,
            "updated_at": at,
        }
        for n in numbers
    ]
    for chunk in _chunks(customers):
        await conn.execute(insert(schema.customers), chunk)
    meters = [
        {
            "meter_number": meter_number(n),
            "customer_id": customer_id(n),
            "supply_group_code": "123456",
            "tariff_index": "01",
            "key_revision": 1,
            "key_type": 2,
            "base_date": 1993,
            "comms_key_sealed": None,
            "comms_key_master_id": None,
            "comms_key_id": None,
            "tx_counter": 0,
            "rx_counter": 0,
            "replay_window": b"",
            "state": "active",
            "state_at": at,
            "created_at": at,
            "updated_at": at,
        }
        for n in numbers
    ]
    for chunk in _chunks(meters):
        await conn.execute(insert(schema.meters), chunk)


async def insert_rows(conn: AsyncConnection, table: Any, rows: list[dict[str, Any]]) -> None:
    for chunk in _chunks(rows):
        await conn.execute(insert(table), chunk)
