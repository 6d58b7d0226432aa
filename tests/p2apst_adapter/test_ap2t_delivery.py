"""Delivering AP2T batches over real HTTP to the receiver simulator, and by directory drop."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from p2apst_adapter.ap2t import Manifest, export_batch
from p2apst_adapter.ap2t.delivery import (
    DeliveryRejected,
    DirectoryDrop,
    HttpUpload,
    batch_overdue,
    deliver_until_acknowledged,
)
from p2apst_adapter.ap2t.receiver import Ap2tReceiver
from tests.ap2t_support import serve, synthetic_records

DAY = date(2026, 11, 20)


async def make_batch(tmp_path: Path, count: int = 200) -> tuple[Path, Manifest]:
    manifest = await export_batch(DAY, synthetic_records(DAY, count), tmp_path)
    return tmp_path / manifest.file, manifest


async def no_wait(_: float) -> None:
    return None


async def test_upload_is_acknowledged_and_stored_byte_for_byte(tmp_path: Path) -> None:
    path, manifest = await make_batch(tmp_path)
    receiver = Ap2tReceiver(token="s3cret")
    async with serve(receiver.app()) as base:
        ack = await HttpUpload(f"{base}/ap2t/batches", "s3cret").deliver(path, manifest)
    assert ack.sha256 == manifest.sha256
    assert receiver.batches["2026-11-20"].content == path.read_bytes()


async def test_transient_failures_are_retried_until_acknowledged(tmp_path: Path) -> None:
    path, manifest = await make_batch(tmp_path)
    receiver = Ap2tReceiver(token="t", fail_next=3)
    delays: list[float] = []

    async def record_wait(delay: float) -> None:
        delays.append(delay)

    async with serve(receiver.app()) as base:
        ack = await deliver_until_acknowledged(
            HttpUpload(f"{base}/ap2t/batches", "t"), path, manifest, wait=record_wait
        )
    assert receiver.uploads == 4
    assert delays == [1.0, 2.0, 4.0]
    assert ack.receipt == receiver.batches["2026-11-20"].receipt


async def test_sending_the_same_batch_twice_gets_the_same_receipt(tmp_path: Path) -> None:
    path, manifest = await make_batch(tmp_path)
    receiver = Ap2tReceiver(token="t")
    async with serve(receiver.app()) as base:
        upload = HttpUpload(f"{base}/ap2t/batches", "t")
        first = await upload.deliver(path, manifest)
        second = await upload.deliver(path, manifest)
    assert first == second and len(receiver.batches) == 1


async def test_a_different_file_for_the_same_day_is_rejected_not_retried(tmp_path: Path) -> None:
    path, manifest = await make_batch(tmp_path / "one", 10)
    other_path, other = await make_batch(tmp_path / "two", 11)
    receiver = Ap2tReceiver(token="t")
    async with serve(receiver.app()) as base:
        upload = HttpUpload(f"{base}/ap2t/batches", "t")
        await upload.deliver(path, manifest)
        with pytest.raises(DeliveryRejected, match="409"):
            await deliver_until_acknowledged(upload, other_path, other, wait=no_wait)
    assert receiver.uploads == 2


async def test_bad_credentials_are_rejected(tmp_path: Path) -> None:
    path, manifest = await make_batch(tmp_path)
    async with serve(Ap2tReceiver(token="right").app()) as base:
        with pytest.raises(DeliveryRejected, match="401"):
            await HttpUpload(f"{base}/ap2t/batches", "wrong").deliver(path, manifest)


async def test_an_unreachable_receiver_gives_up_after_the_attempts(tmp_path: Path) -> None:
    path, manifest = await make_batch(tmp_path)
    upload = HttpUpload("http://127.0.0.1:9/ap2t/batches", "t", timeout=2)
    with pytest.raises(OSError):
        await deliver_until_acknowledged(upload, path, manifest, attempts=2, wait=no_wait)


async def test_directory_drop_writes_file_then_manifest(tmp_path: Path) -> None:
    path, manifest = await make_batch(tmp_path / "out")
    drop = tmp_path / "ap2t-inbox"
    ack = await DirectoryDrop(drop).deliver(path, manifest)
    assert ack.sha256 == manifest.sha256
    assert (drop / manifest.file).read_bytes() == path.read_bytes()
    assert Manifest.from_json((drop / "ap2t-20261120.manifest.json").read_text()) == manifest
    assert not list(drop.glob("*.part"))


def test_alert_when_the_last_acknowledged_batch_is_older_than_a_day() -> None:
    now = datetime(2026, 11, 21, 12, tzinfo=UTC)
    assert batch_overdue(None, now)
    assert not batch_overdue(now - timedelta(hours=23, minutes=59), now)
    assert batch_overdue(now - timedelta(hours=24, seconds=1), now)
