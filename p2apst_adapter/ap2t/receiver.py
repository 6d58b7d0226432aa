"""The AP2T receiving simulator: accepts batch uploads, checks them, acknowledges them.

Idempotent: the same batch sent twice gets the same receipt. A different file for a day
and revision that already has one is a conflict (corrections belong in a later batch or a
later revision of the day, never a rewrite). `batches` holds the newest revision received
per day; `revisions` every one, by (day, revision).
`fail_next` makes it answer 503 to the next N uploads, to exercise the sender's retries.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import FastAPI, Form, Header, HTTPException, UploadFile

from p2apst_adapter.ap2t.export import Manifest


@dataclass(slots=True)
class ReceivedBatch:
    manifest: Manifest
    content: bytes
    receipt: str


@dataclass(slots=True)
class Ap2tReceiver:
    token: str
    fail_next: int = 0
    batches: dict[str, ReceivedBatch] = field(default_factory=dict)
    revisions: dict[tuple[str, int], ReceivedBatch] = field(default_factory=dict)
    uploads: int = 0

    def app(self) -> FastAPI:
        api = FastAPI(title="AP2T receiver (simulator)")

        @api.post("/ap2t/batches")
        async def upload(
            manifest: Annotated[str, Form()],
            file: UploadFile,
            authorization: Annotated[str, Header()] = "",
        ) -> dict[str, str]:
            return self.receive(authorization, manifest, await file.read())

        return api

    def receive(self, authorization: str, manifest_json: str, content: bytes) -> dict[str, str]:
        self.uploads += 1
        if not hmac.compare_digest(authorization, f"Bearer {self.token}"):
            raise HTTPException(401, "bad credentials")
        if self.fail_next > 0:
            self.fail_next -= 1
            raise HTTPException(503, "busy")
        try:
            manifest = Manifest.from_json(manifest_json)
        except (json.JSONDecodeError, TypeError) as error:
            raise HTTPException(422, f"bad manifest: {error}") from None
        digest = hashlib.sha256(content).hexdigest()
        if digest != manifest.sha256:
            raise HTTPException(422, "file does not match the manifest's SHA-256")
        rows = content.count(b"\n") - 1
        if rows != manifest.record_count:
            raise HTTPException(422, f"{rows} rows, the manifest says {manifest.record_count}")
        if not isinstance(manifest.revision, int) or manifest.revision < 1:
            raise HTTPException(422, f"bad manifest: revision {manifest.revision!r}")
        key = (manifest.date, manifest.revision)
        known = self.revisions.get(key)
        if known is not None and known.manifest.sha256 != digest:
            raise HTTPException(
                409,
                f"a different batch for {manifest.date} revision {manifest.revision}"
                " was already received",
            )
        if known is None:
            suffix = "" if manifest.revision == 1 else f"-r{manifest.revision}"
            known = ReceivedBatch(manifest, content, f"AP2T-{manifest.date}{suffix}-{digest[:12]}")
            self.revisions[key] = known
            newest = self.batches.get(manifest.date)
            if newest is None or newest.manifest.revision < manifest.revision:
                self.batches[manifest.date] = known
        return {"receipt": known.receipt, "sha256": digest, "date": manifest.date}
