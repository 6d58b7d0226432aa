"""Synthetic AP2T records and a real HTTP server for the AP2T receiver simulator."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import uvicorn
from fastapi import FastAPI

from p2apst_adapter.ap2t.records import DailyRecord


def synthetic_records(day: date, count: int, *, seed: int = 0) -> Iterator[DailyRecord]:
    """`count` meters' days in meter-number order; deterministic for a seed."""
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    for index in range(count):
        meter = f"{14000000000 + index * 7 + seed:011d}"
        spread = (index * 2654435761 + seed) % 1000
        yield DailyRecord(
            day=day,
            meter_number=meter,
            customer_id=f"{510000000000 + index:012d}",
            last_reading_at=start + timedelta(minutes=spread),
            last_reading_kwh=Decimal(spread * 13) / 10,
            consumption_kwh=Decimal(spread % 97) / 10,
            remaining_credit_kwh=Decimal(spread % 500) / 10,
            alarms=("low-credit",) if spread % 50 == 0 else (),
            sms_in=1 + spread % 3,
            sms_out=spread % 2,
            sms_failed=1 if spread % 101 == 0 else 0,
            last_contact_at=start + timedelta(minutes=spread, seconds=7),
        )


@asynccontextmanager
async def serve(app: FastAPI) -> AsyncIterator[str]:
    """Serves `app` on an ephemeral loopback port; yields its base URL.

    The socket is listening before the server task starts, so a client can connect at once
    (its connection waits in the backlog) and no polling for readiness is needed.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()
