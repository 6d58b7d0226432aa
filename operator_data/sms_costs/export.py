"""Streams a day's SMS costs out of the cost ledger into `sms-costs-YYYYMMDD.csv` and its
manifest.

The database groups the day's ledger rows (`cost_ledger` joined to `messages` for the
purpose) and the rows are streamed (a server-side cursor on PostgreSQL) into the file
chunk by chunk: memory stays flat however many customers there are. Only a finished WIB day
is exported: the ledger stamps `charged_at` with the time of charging, so once the day is
over its rows no longer change and a re-export gives the identical file. The file and the
manifest land under temporary names first (0600: customer data) and are renamed, manifest
last, so a reader that sees a manifest can trust the file next to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import tempfile
from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import collate, func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncConnection

from operator_data.sms_costs.rows import (
    CostGroup,
    CostManifest,
    FileOrder,
    LineEncoder,
    Totals,
    file_stem,
)
from operator_data.store import Store, schema

WIB = ZoneInfo("Asia/Jakarta")
_FLUSH_BYTES = 1 << 16


class DayNotOver(ValueError):
    """The day's costs are still being charged: exporting it now would give a partial file."""


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """[00:00, 24:00) WIB of `day`, in UTC."""
    start = datetime.combine(day, time(0), tzinfo=WIB).astimezone(UTC)
    return start, start + timedelta(days=1)


def _query(dialect: str) -> Any:
    ledger, messages = schema.cost_ledger, schema.messages
    # literal_column, not a bound '': PostgreSQL must see the same expression in the
    # SELECT and the GROUP BY, and two bind parameters are two expressions to it.
    customer = func.coalesce(ledger.c.customer_id, literal_column("''"))
    purpose = func.coalesce(messages.c.kind, literal_column("''"))
    # Customer by customer in code-point order ("C" on PostgreSQL, whose default collation
    # is the locale's); FileOrder sorts within each customer.
    order = collate(customer, "C") if dialect == "postgresql" else customer
    return (
        select(
            customer.label("customer_id"),
            ledger.c.flow,
            purpose.label("purpose"),
            ledger.c.price_version,
            func.count().label("sms_count"),
            func.sum(ledger.c.amount_idr).label("amount_idr"),
        )
        .select_from(ledger.join(messages, messages.c.id == ledger.c.message_id))
        .group_by(customer, ledger.c.flow, purpose, ledger.c.price_version)
        .order_by(order)
    )


async def cost_groups(conn: AsyncConnection, day: date) -> AsyncIterator[CostGroup]:
    """The day's groups, customer by customer (each customer's groups adjacent)."""
    start, end = day_bounds(day)
    ledger = schema.cost_ledger
    query = _query(conn.dialect.name).where(ledger.c.charged_at >= start, ledger.c.charged_at < end)
    result = await conn.stream(query)
    async for row in result:
        yield CostGroup(
            customer_id=str(row.customer_id),
            flow=str(row.flow),
            purpose=str(row.purpose),
            price_version=str(row.price_version),
            sms_count=int(row.sms_count),
            amount_idr=int(row.amount_idr),
        )


async def rows_in_file_order(conn: AsyncConnection, day: date) -> AsyncIterator[CostGroup]:
    """`cost_groups` in the file's order (`rows.FileOrder`: one customer held at a time)."""
    order = FileOrder()
    async for group in cost_groups(conn, day):
        for ready in order.push(group):
            yield ready
    for ready in order.finish():
        yield ready


def _write_private(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as out:
        out.write(text)
    os.replace(tmp, path)


async def export_day(
    store: Store,
    day: date,
    out_dir: Path,
    *,
    now: datetime,
    progress: Callable[[int], None] | None = None,
) -> CostManifest:
    """Write the SMS costs of WIB day `day` and their manifest into `out_dir`."""
    start, end = day_bounds(day)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if now < end:
        raise DayNotOver(
            f"{day} (WIB) is not over until {end.astimezone(WIB):%Y-%m-%d %H:%M %z}:"
            " its SMS are still being charged; export it after"
        )
    await asyncio.to_thread(out_dir.mkdir, parents=True, exist_ok=True)
    stem = file_stem(day)
    handle, tmp_name = tempfile.mkstemp(prefix=f"{stem}.", suffix=".csv.tmp", dir=out_dir)
    tmp = Path(tmp_name)
    digest, totals = hashlib.sha256(), Totals()
    encoder = LineEncoder(day)
    try:
        with os.fdopen(handle, "wb") as out:
            buffer = [encoder.header().encode("utf-8")]
            size = 0
            async with store.read() as conn:
                async for group in rows_in_file_order(conn, day):
                    data = encoder.line(totals.add(group)).encode("utf-8")
                    buffer.append(data)
                    size += len(data)
                    if size >= _FLUSH_BYTES:
                        chunk = b"".join(buffer)
                        digest.update(chunk)
                        out.write(chunk)
                        buffer, size = [], 0
                    if progress is not None:
                        progress(totals.record_count)
            chunk = b"".join(buffer)
            digest.update(chunk)
            out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        path = out_dir / f"{stem}.csv"
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    manifest = totals.manifest(day, start, end, path.name, digest.hexdigest())
    _write_private(out_dir / f"{stem}.manifest.json", manifest.to_json())
    return manifest
