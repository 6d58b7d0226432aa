"""An app over a seeded SQLite copy (helpdesk_seed plus helpdesk_extra_seed), migrated and
seeded once per test module, with an httpx client per test."""

from __future__ import annotations

import asyncio
import secrets
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from operator_data.api.app import create_app
from operator_data.api.auth import Role
from operator_data.crypto import MasterKey
from operator_data.registry import Registry
from operator_data.settings import PinPolicy, Settings
from operator_data.store import Store, schema
from tests.operator_data.helpdesk_extra_seed import Extra, seed_extra
from tests.operator_data.helpdesk_seed import RecordingActions, Seeded, seed


@dataclass
class Env:
    client: httpx.AsyncClient
    seeded: Seeded
    extra: Extra
    store: Store

    def as_(self, role: Role) -> dict[str, str]:
        return {"X-API-Key": self.seeded.keys[role]}

    async def audit(self, action: str) -> list[Any]:
        async with self.store.read() as conn:
            return list(
                await conn.execute(
                    select(schema.audit_log)
                    .where(schema.audit_log.c.action == action)
                    .order_by(schema.audit_log.c.id)
                )
            )


@dataclass(frozen=True)
class Template:
    db: Path
    master: MasterKey
    seeded: Seeded
    extra: Extra


def build_template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    db = tmp_path_factory.mktemp("template") / "hd.db"
    master = MasterKey(secrets.token_bytes(32))

    async def build() -> tuple[Seeded, Extra]:
        async with Store(f"sqlite+aiosqlite:///{db}") as store:
            await store.migrate()
            registry = Registry(store, master_key=master, pin_policy=PinPolicy())
            seeded = await seed(store, registry)
            return seeded, await seed_extra(store, seeded)

    seeded, extra = asyncio.run(build())
    return Template(db, master, seeded, extra)


async def open_env(template: Template, tmp_path: Path) -> AsyncIterator[Env]:
    db = tmp_path / "hd.db"
    shutil.copyfile(template.db, db)
    if template.db.with_name("hd.db-wal").exists():
        shutil.copyfile(template.db.with_name("hd.db-wal"), tmp_path / "hd.db-wal")
    async with Store(f"sqlite+aiosqlite:///{db}") as store:
        registry = Registry(store, master_key=template.master, pin_policy=PinPolicy())
        app = create_app(
            Settings(),
            store,
            registry,
            actions=RecordingActions(registry),
            clock=lambda: template.seeded.now,
        )
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://hd") as client:
            yield Env(client, template.seeded, template.extra, store)
