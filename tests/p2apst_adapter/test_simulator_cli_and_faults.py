"""Fault plans from SPEC strings, and `pintar p2apst-sim` as a process."""

from __future__ import annotations

import asyncio
import json
import sys
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from operator_data.cli.main import app
from p2apst_adapter.client import P2apstClient, SqliteStore
from p2apst_adapter.simulator import Fault, FaultKind, FaultPlan, FaultScript, FaultSpecError
from p2apst_adapter.simulator.faults import FaultPicker


def test_parse_full_spec() -> None:
    plan = FaultPlan.parse(
        "latency=0.2:0.5,drop=0.05,noanswer=0.05,lost=0.04,late=0.05,late_after=1.5,"
        "error=0046:0.02,error=0090:0.01,seed=1"
    )
    assert plan == FaultPlan(
        latency=0.2,
        latency_p=0.5,
        noanswer=0.05,
        lost=0.04,
        late=0.05,
        late_after=1.5,
        drop=0.05,
        errors=(("0046", 0.02), ("0090", 0.01)),
        seed=1,
    )
    assert FaultPlan.parse("latency=0.2").latency_p == 1.0


@pytest.mark.parametrize(
    "spec",
    [
        "bogus=1",
        "drop",
        "drop=2",
        "error=46:0.1",
        "drop=0.6,noanswer=0.6",
        "lost=0.5,drop=0.6",
        "seed=x",
    ],
)
def test_bad_specs_are_refused(spec: str) -> None:
    with pytest.raises(FaultSpecError):
        FaultPlan.parse(spec)


def test_plan_is_repeatable_and_roughly_proportional() -> None:
    plan = FaultPlan.parse("drop=0.2,error=0046:0.2,seed=3")
    picker_a, picker_b = FaultPicker(plan), FaultPicker(plan)
    a = [picker_a.pick(can_error=True).kind for _ in range(1000)]
    b = [picker_b.pick(can_error=True).kind for _ in range(1000)]
    assert a == b
    counts = Counter(a)
    assert 120 < counts[FaultKind.DROP] < 280
    assert 120 < counts[FaultKind.ERROR] < 280
    no_errors = FaultPicker(plan)
    assert all(no_errors.pick(can_error=False).kind != FaultKind.ERROR for _ in range(200))


def test_script_takes_matching_entries_in_order() -> None:
    script = FaultScript()
    script.push(Fault.drop(), "2200")
    script.push(Fault.no_answer())
    assert script.take("2220") == Fault.no_answer()
    assert script.take("2220") is None
    assert script.take("2200") == Fault.drop()
    assert len(script) == 0


def test_cli_rejects_bad_faults_and_meters(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["p2apst-sim", "--faults", "drop=7"])
    assert result.exit_code == 2 and "--faults" in result.stderr
    bad = tmp_path / "meters.json"
    bad.write_text("{}")
    result = runner.invoke(app, ["p2apst-sim", "--meters", str(bad)])
    assert result.exit_code == 2 and "--meters" in result.stderr


@pytest.mark.timeout(30)
async def test_cli_serves_purchases(tmp_path: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from operator_data.cli.main import main; main()",
        "p2apst-sim",
        "--port",
        "0",
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        text = b""
        while not text.rstrip().endswith(b"}") or text.count(b"{") != text.count(b"}"):
            text += await process.stdout.readline()
        banner = json.loads(text)
        port = int(banner["listening"].rsplit(":", 1)[1])
        meter = banner["meters"][0]
        async with (
            SqliteStore(tmp_path / "j.sqlite") as store,
            P2apstClient("127.0.0.1", port, journal=store.journal) as client,
        ):
            found = await client.inquiry(meter_number=meter["meter_number"])
            assert found.customer_name == meter["customer_name"]
    finally:
        process.terminate()
        await process.wait()
