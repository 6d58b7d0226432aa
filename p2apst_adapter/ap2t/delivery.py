"""Hands a batch to AP2T: an HTTP upload or a directory drop, retried until acknowledged."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

import httpx

from p2apst_adapter.ap2t.export import Manifest, verify

#: AP2T must get non-transaction data at least once a day (PLN 0066, art. 4(2)).
MAX_BATCH_AGE = timedelta(hours=24)


class DeliveryRejected(Exception):
    """AP2T refused the batch for good (a 4xx other than a time-out): retrying will not help."""


@dataclass(frozen=True, slots=True)
class Acknowledgement:
    batch_date: str
    sha256: str
    receipt: str


class Delivery(Protocol):
    async def deliver(self, csv_path: Path, manifest: Manifest) -> Acknowledgement: ...


@dataclass(slots=True)
class HttpUpload:
    """POSTs the manifest and the file as multipart/form-data to the AP2T receiver."""

    url: str
    token: str
    timeout: float = 30.0

    async def deliver(self, csv_path: Path, manifest: Manifest) -> Acknowledgement:
        verify(csv_path, manifest)
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                with csv_path.open("rb") as handle:
                    response = await client.post(
                        self.url,
                        headers={"Authorization": f"Bearer {self.token}"},
                        data={"manifest": manifest.to_json()},
                        files={"file": (manifest.file, handle, "text/csv")},
                    )
        except httpx.HTTPError as error:
            raise ConnectionError(f"AP2T at {self.url} unreachable: {error}") from error
        if response.status_code in (408, 429) or response.status_code >= 500:
            raise ConnectionError(f"AP2T answered {response.status_code}: try again later")
        if response.status_code >= 400:
            raise DeliveryRejected(
                f"AP2T refused {manifest.file}: {response.status_code} {response.text}"
            )
        body = response.json()
        if body.get("sha256") != manifest.sha256:
            raise ConnectionError(f"AP2T acknowledged another file than {manifest.file}")
        return Acknowledgement(manifest.date, manifest.sha256, str(body["receipt"]))


@dataclass(slots=True)
class DirectoryDrop:
    """Copies the file, then the manifest, into a directory AP2T collects from.

    Each lands under a temporary name first, and the manifest comes last: a collector that
    sees a manifest can trust the file next to it is complete.
    """

    directory: Path

    async def deliver(self, csv_path: Path, manifest: Manifest) -> Acknowledgement:
        verify(csv_path, manifest)
        await asyncio.to_thread(self._copy, csv_path, manifest)
        return Acknowledgement(manifest.date, manifest.sha256, f"dropped:{manifest.file}")

    def _copy(self, csv_path: Path, manifest: Manifest) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        target = self.directory / manifest.file
        shutil.copyfile(csv_path, target.with_name(target.name + ".part"))
        os.replace(target.with_name(target.name + ".part"), target)
        manifest_target = target.with_suffix(".manifest.json")
        part = manifest_target.with_name(manifest_target.name + ".part")
        part.write_text(manifest.to_json(), encoding="utf-8")
        os.replace(part, manifest_target)


async def deliver_until_acknowledged(
    delivery: Delivery,
    csv_path: Path,
    manifest: Manifest,
    *,
    attempts: int = 10,
    first_delay: float = 1.0,
    max_delay: float = 300.0,
    wait: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> Acknowledgement:
    """Retries transient failures with exponential back-off; a rejection is raised at once."""
    delay = first_delay
    for attempt in range(1, attempts + 1):
        try:
            return await delivery.deliver(csv_path, manifest)
        except DeliveryRejected:
            raise
        except OSError:
            if attempt == attempts:
                raise
            await wait(delay)
            delay = min(delay * 2, max_delay)
    raise AssertionError("unreachable")


def batch_overdue(last_acknowledged_at: datetime | None, now: datetime) -> bool:
    """True when AP2T has had no acknowledged batch for more than 24 h: raise an alert."""
    return last_acknowledged_at is None or now - last_acknowledged_at > MAX_BATCH_AGE
