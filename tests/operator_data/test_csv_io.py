"""CSV import (all-or-nothing, per-line errors) and export (no secrets), on both backends,
and the `pintar registry` / `pintar db` commands."""

from __future__ import annotations

import csv
import io
import json
import secrets
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from operator_data.cli.main import app
from operator_data.crypto import MasterKey
from operator_data.migrations.runner import shipped_heads
from operator_data.registry import (
    COLUMNS,
    ImportRejected,
    Registry,
    RegistryError,
    SenderCustomer,
    SenderMeter,
    export_csv,
    import_csv,
)
from operator_data.settings import PinPolicy
from operator_data.store import MeterState, Store, schema
from tests.operator_data.conftest import Clock

pytestmark = pytest.mark.timeout(60)
KEY_HEX = "00112233445566778899aabbccddeeff"


def row(n: int, **overrides: str) -> dict[str, str]:
    base = {
        "customer_id": f"{5300000000 + n:012d}",
        "customer_name": f"Pelanggan {n}",
        "tariff_segment": "R1",
        "power_va": "1300",
        "meter_number": f"{14000000000 + n:011d}",
        "supply_group_code": "123456",
        "tariff_index": "01",
        "key_revision": "1",
        "key_type": "2",
        "base_date": "1993",
        "meter_state": "active",
        "comms_key_id": "",
        "comms_key_hex": "",
        "sim_msisdn": f"0811200000{n:02d}",
        "sim_iccid": f"8962{10_000_000_000_000 + n:015d}",
        "sim_operator": "Telkomsel",
        "sim_m2m": "true",
        "sim_responsible_person": "Budi Santoso",
        "phone_msisdns": f"0812300000{n:02d}",
    }
    base.update(overrides)
    return base


def to_csv(rows: list[dict[str, str]], columns: tuple[str, ...] = COLUMNS) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


@pytest.fixture
def registry(store: Store, master_key: MasterKey, pin_policy: PinPolicy, clock: Clock) -> Registry:
    return Registry(store, master_key=master_key, pin_policy=pin_policy, clock=clock)


async def _count(store: Store, table: object) -> int:
    async with store.read() as conn:
        return int(await conn.scalar(select(func.count()).select_from(table)) or 0)  # type: ignore[arg-type]


async def test_import_everything(registry: Registry, store: Store) -> None:
    rows = [
        row(1, comms_key_id="k1", comms_key_hex=KEY_HEX),
        # second meter of customer 1, its SIM and a second phone
        row(
            1,
            meter_number="14000000099",
            sim_msisdn="081120000099",
            sim_iccid="8962100000000000099",
            phone_msisdns="081230000001;0812 3000 0077",
        ),
        row(2, meter_state="", sim_m2m=""),
        # customer 3 has no meter yet
        {
            **{k: "" for k in COLUMNS},
            "customer_id": "005300000003",
            "customer_name": "Tiga",
            "tariff_segment": "B1",
            "power_va": "5500",
        },
    ]
    summary = await import_csv(registry, io.StringIO(to_csv(rows)))
    assert summary.as_dict() == {
        "lines": 4,
        "customers_created": 3,
        "customers_existing": 0,
        "meters": 3,
        "sims": 3,
        "phones": 3,
    }
    assert (await registry.comms_key("14000000001")).key.hex() == KEY_HEX
    assert (await registry.get_meter("14000000001")).state is MeterState.ACTIVE
    assert (await registry.get_meter("14000000002")).state is MeterState.REQUESTED
    assert [p.msisdn for p in await registry.phones_of("005300000001")] == [
        "+6281230000001",
        "+6281230000077",
    ]
    assert await registry.resolve_sender("081120000099") == SenderMeter(
        "14000000099", "005300000001"
    )
    assert await registry.resolve_sender("081230000002") == SenderCustomer(
        "005300000002", "+6281230000002"
    )
    assert [s.detail for s in await registry.meter_history("14000000001")] == ["imported"]


async def test_import_is_all_or_nothing_with_per_line_errors(
    registry: Registry, store: Store
) -> None:
    await import_csv(registry, io.StringIO(to_csv([row(9)])))  # already registered
    rows = [
        row(1),
        row(2, meter_number="1400000000X"),  # line 3
        row(3, sim_msisdn="112", power_va="lots"),  # line 4: two problems
        row(4, meter_number="14000000001"),  # line 5: meter also on line 2
        row(
            9,
            meter_number="14000000055",
            sim_msisdn="081120000055",
            sim_iccid="8962100000000000055",
            phone_msisdns="081230000009",
        ),  # fine (existing)
        row(
            6, sim_msisdn="081120000009", sim_iccid="8962100000000000066", phone_msisdns=""
        ),  # line 7: SIM taken in the database
        row(7, phone_msisdns="081230000001"),  # line 8: phone of customer 1 (line 2)
        row(8, meter_state="broken", comms_key_hex="abcd"),  # line 9
    ]
    with pytest.raises(ImportRejected) as caught:
        await import_csv(registry, io.StringIO(to_csv(rows)))
    found = {(i.line, i.column) for i in caught.value.issues}
    assert {
        (3, "meter_number"),
        (4, "sim_msisdn"),
        (4, "power_va"),
        (5, "meter_number"),
        (8, "phone_msisdns"),
        (9, "meter_state"),
        (9, "comms_key_hex"),
        (9, "comms_key_id"),
    } <= found
    # Database clashes are only looked for once the file itself is clean.
    clean = [rows[0], rows[4], rows[5]]
    with pytest.raises(ImportRejected) as caught:
        await import_csv(registry, io.StringIO(to_csv(clean)))
    assert [(i.line, i.column) for i in caught.value.issues] == [(4, "sim_msisdn")]
    # Nothing from either attempt was written.
    assert await _count(store, schema.customers) == 1
    assert await _count(store, schema.meters) == 1
    assert await _count(store, schema.sims) == 1
    assert await _count(store, schema.customer_phones) == 1


async def test_import_refuses_a_bad_header(registry: Registry) -> None:
    text = to_csv([row(1)]).replace("customer_name", "nama", 1)
    with pytest.raises(ImportRejected) as caught:
        await import_csv(registry, io.StringIO(text))
    assert {(i.line, i.column) for i in caught.value.issues} == {(1, "customer_name"), (1, "nama")}


async def test_import_conflicting_customer_details(registry: Registry) -> None:
    rows = [
        row(1),
        row(
            1,
            meter_number="14000000077",
            sim_msisdn="",
            sim_iccid="",
            sim_operator="",
            sim_m2m="",
            sim_responsible_person="",
            customer_name="Someone Else",
        ),
    ]
    with pytest.raises(ImportRejected) as caught:
        await import_csv(registry, io.StringIO(to_csv(rows)))
    assert [(i.line, i.column) for i in caught.value.issues] == [(3, "customer_name")]


async def test_import_keys_need_a_master_key(store: Store, pin_policy: PinPolicy) -> None:
    keyless = Registry(store, master_key=None, pin_policy=pin_policy)
    with pytest.raises(ImportRejected) as caught:
        await import_csv(
            keyless, io.StringIO(to_csv([row(1, comms_key_id="k", comms_key_hex=KEY_HEX)]))
        )
    assert [(i.line, i.column) for i in caught.value.issues] == [(2, "comms_key_hex")]
    assert await _count(store, schema.meters) == 0


async def test_export_round_trip_without_secrets(
    registry: Registry, store: Store, database_url: str
) -> None:
    rows = [
        row(1, comms_key_id="k1", comms_key_hex=KEY_HEX),
        row(
            1,
            meter_number="14000000099",
            sim_msisdn="",
            sim_iccid="",
            sim_operator="",
            sim_m2m="",
            sim_responsible_person="",
            phone_msisdns="081230000001;081230000077",
        ),
        row(2, meter_state="suspended"),
    ]
    await import_csv(registry, io.StringIO(to_csv(rows)))
    await registry.set_pin("081230000001", "975310", actor="t")
    first = io.StringIO()
    assert await export_csv(registry, first) == 3
    text = first.getvalue()
    assert KEY_HEX not in text and "hmac1" not in text and "975310" not in text
    exported = list(csv.DictReader(io.StringIO(text)))
    assert tuple(exported[0]) == COLUMNS
    assert all(r["comms_key_hex"] == "" and r["comms_key_id"] == "" for r in exported)
    # Two numbers in one cell begin with "+" but are no number: quoted against formulas.
    assert exported[0]["phone_msisdns"] == "'+6281230000001;+6281230000077"
    assert exported[2]["meter_state"] == "suspended"
    # Importing the export into an empty registry gives back the same export.
    async with store.begin() as conn:
        for table in reversed(schema.metadata.sorted_tables):
            await conn.execute(table.delete())
    await import_csv(registry, io.StringIO(text))
    second = io.StringIO()
    await export_csv(registry, second)
    assert second.getvalue() == text
    # PINs do not travel: the re-imported phone has none until the customer sets one.
    with pytest.raises(RegistryError, match="no PIN"):
        await registry.verify_pin("081230000001", "975310")


def _cli_env(tmp_path: Path) -> dict[str, str]:
    return {
        "PINTAR_DATABASE__URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}",
        "PINTAR_SECURITY__MASTER_KEY": secrets.token_hex(32),
    }


def test_cli_import_export_and_db(tmp_path: Path) -> None:
    runner = CliRunner()
    env = _cli_env(tmp_path)
    upgraded = runner.invoke(app, ["db", "upgrade"], env=env)
    assert upgraded.exit_code == 0, upgraded.output
    assert json.loads(upgraded.stdout)["to"] == shipped_heads()
    good = tmp_path / "good.csv"
    good.write_text(to_csv([row(1, comms_key_id="k1", comms_key_hex=KEY_HEX), row(2)]))
    result = runner.invoke(app, ["registry", "import", str(good)], env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "imported": True,
        "lines": 2,
        "customers_created": 2,
        "customers_existing": 0,
        "meters": 2,
        "sims": 2,
        "phones": 2,
    }
    bad = tmp_path / "bad.csv"
    bad.write_text(to_csv([row(3), row(4, customer_id="12")]))
    result = runner.invoke(app, ["registry", "import", str(bad)], env=env)
    assert result.exit_code == 2
    document = json.loads(result.stdout)
    assert document["imported"] is False
    assert document["errors"][0]["line"] == 3 and document["errors"][0]["column"] == "customer_id"
    assert "nothing was imported" in result.stderr
    out = tmp_path / "export.csv"
    result = runner.invoke(app, ["registry", "export", "--out", str(out)], env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["lines"] == 2
    assert KEY_HEX not in out.read_text() and "005300000003" not in out.read_text()
    to_stdout = runner.invoke(app, ["registry", "export"], env=env)
    assert to_stdout.stdout == out.read_text()


def test_cli_refuses_bad_settings(tmp_path: Path) -> None:
    config = tmp_path / "pintar.toml"
    config.write_text('[service]\nshort_code = "112"\n')
    result = CliRunner().invoke(
        app, ["db", "upgrade", "--config", str(config)], env=_cli_env(tmp_path)
    )
    assert result.exit_code == 2 and "service.short_code" in result.stderr
    result = CliRunner().invoke(
        app, ["registry", "import", str(tmp_path / "missing.csv")], env=_cli_env(tmp_path)
    )
    assert result.exit_code == 2 and "missing.csv" in result.stderr
