"""Issue 17 item 13 on the command line: `pintar registry sim-swap request|approve|reject
|list`, with the four-eyes rule between OS users and the registry's audit rows naming
`cli:<os user>`."""

from __future__ import annotations

import asyncio
import json
import secrets
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from operator_data.cli.main import app
from operator_data.crypto import MasterKey
from operator_data.registry import CustomerIn, MeterIn, Registry, SimIn
from operator_data.settings import PinPolicy
from operator_data.store import Store, schema

pytestmark = pytest.mark.timeout(60)

METER = "14000000001"
OLD_SIM = "+628112000001"
NEW_SIM = "+628112000002"
runner = CliRunner()


@pytest.fixture
def data_dir(tmp_path: Path) -> tuple[Path, str]:
    master = secrets.token_bytes(32)

    async def seed() -> None:
        async with Store(f"sqlite+aiosqlite:///{tmp_path / 'pintar.db'}") as store:
            await store.migrate()
            registry = Registry(store, master_key=MasterKey(master), pin_policy=PinPolicy())
            await registry.create_customer(CustomerIn("530000000001", "Budi", "R1", 1300))
            await registry.create_meter(MeterIn(METER, "530000000001", "123456", "01", 1, 2))
            await registry.create_sim(SimIn(OLD_SIM, "8962100000000000001", "Telkomsel", "OD"))
            await registry.create_sim(SimIn(NEW_SIM, "8962100000000000002", "Telkomsel", "OD"))
            await registry.bind_sim(OLD_SIM, METER, actor="seed")

    asyncio.run(seed())
    return tmp_path, master.hex()


def _run(data: tuple[Path, str], who: str, *args: str) -> Any:
    where, master = data
    env = {"LOGNAME": who, "PINTAR_SECURITY__MASTER_KEY": master}
    return runner.invoke(app, ["registry", "sim-swap", *args, "--data-dir", str(where)], env=env)


def _ok(data: tuple[Path, str], who: str, *args: str) -> Any:
    result = _run(data, who, *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _refused(data: tuple[Path, str], who: str, *args: str) -> str:
    result = _run(data, who, *args)
    assert result.exit_code == 2, result.output
    assert "error:" in result.stderr
    return str(result.stderr)


def _audit(where: Path) -> list[tuple[str, str]]:
    async def read() -> list[Any]:
        log = schema.audit_log
        query = (
            select(log.c.actor, log.c.action)
            .where(log.c.action.like("sim_swap.%"))
            .order_by(log.c.id)
        )
        async with (
            Store(f"sqlite+aiosqlite:///{where / 'pintar.db'}") as store,
            store.read() as conn,
        ):
            return list(await conn.execute(query))

    return [(r.actor, r.action) for r in asyncio.run(read())]


def test_request_reject_then_approve_by_someone_else(data_dir: tuple[Path, str]) -> None:
    first = _ok(data_dir, "alice", "request", METER, NEW_SIM, "--reason", "SIM rusak")
    assert (first["state"], first["requested_by"]) == ("requested", "cli:alice")
    assert (first["old_msisdn"], first["new_msisdn"]) == (OLD_SIM, NEW_SIM)
    swap = str(first["swap_id"])
    # Four eyes: the requester cannot approve, even from the command line.
    assert "someone other than its requester" in _refused(data_dir, "alice", "approve", swap)
    listed = _ok(data_dir, "bob", "list", "--state", "requested")
    assert [s["swap_id"] for s in listed] == [first["swap_id"]]
    rejected = _ok(data_dir, "bob", "reject", swap, "--note", "salah nomor")
    assert (rejected["state"], rejected["decided_by"]) == ("rejected", "cli:bob")
    assert rejected["decision_note"] == "salah nomor"
    _refused(data_dir, "carol", "approve", swap)  # decided once, for good

    second = _ok(data_dir, "alice", "request", METER, NEW_SIM)
    approved = _ok(data_dir, "bob", "approve", str(second["swap_id"]))
    assert approved["state"] == "approved"
    assert _ok(data_dir, "bob", "list", "--meter", METER)[0]["swap_id"] == second["swap_id"]
    assert _audit(data_dir[0]) == [
        ("cli:alice", "sim_swap.request"),
        ("cli:bob", "sim_swap.reject"),
        ("cli:alice", "sim_swap.request"),
        ("cli:bob", "sim_swap.approve"),
    ]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["request", "12", NEW_SIM], "11 digits"),
        (["request", METER, "not-a-number"], "error:"),
        (["request", "14000000999", NEW_SIM], "not registered"),
        (["approve", "999"], "does not exist"),
        (["reject", "999"], "does not exist"),
        (["list", "--state", "pending"], "requested, approved, rejected"),
        (["list", "--meter", "1"], "11 digits"),
        (["request", METER, NEW_SIM, "--reason", "x" * 501], "at most 500"),
    ],
)
def test_bad_input_says_why(data_dir: tuple[Path, str], args: list[str], says: str) -> None:
    assert says in _refused(data_dir, "alice", *args)
    assert _audit(data_dir[0]) == []
