"""`pintar demo` in small: the whole system in one process, with and without faults.

The real pieces run: SQLite, emulated modems over ptys driven by the AT driver, the
simulated network, meters and phones, the P2APST simulator over TCP, the AP2T receiver.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from operator_data.cli.main import app
from operator_data.demo import DemoFaults, DemoOptions, run_demo

pytestmark = pytest.mark.timeout(240)


def _options(tmp_path: Path, faults: str) -> DemoOptions:
    return DemoOptions(
        meters=12,
        modems=2,
        duration=8,
        faults=DemoFaults.parse(faults),
        seed=3,
        data_dir=tmp_path / "demo",
        summary=tmp_path / "summary.json",
        web_port=None,
        purchase_rate=2.0,
        drain_seconds=150,
        live=False,
    )


async def test_every_paid_purchase_is_applied_once_without_faults(tmp_path: Path) -> None:
    summary = await run_demo(_options(tmp_path, "none"), out=io.StringIO())
    assert summary["purchases_paid"] > 0
    # Every paid purchase is applied, or (a meter too slow for the fast profile's 20 s on a
    # loaded machine) escalated to the helpdesk: never silently lost.
    assert summary["silent_losses"] == 0
    assert all(item["surfaced_to_helpdesk"] for item in summary["lost"])
    assert summary["tokens_applied"] + len(summary["lost"]) == summary["purchases_paid"]
    assert summary["receipts_sent"] >= summary["tokens_applied"]
    assert summary["duplicates"]["total"] == 0
    assert summary["ap2t"]["delivered"] is True
    assert summary["sla"]["stages"]["meter_answer"]["count"] == summary["purchases_paid"]
    # Nothing accepted is left unanswered, and whatever is still open says why.
    assert summary["open"]["customer_sms_unanswered"] == 0
    assert all(entry["why"] for entry in summary["open"]["purchases"].values())
    assert not {"requested", "submitted", "token_issued"} & set(summary["open"]["purchases"])
    assert json.loads((tmp_path / "summary.json").read_text()) == json.loads(
        json.dumps(summary, default=str)
    )


async def test_moderate_faults_lose_nothing_silently_and_duplicate_nothing(
    tmp_path: Path,
) -> None:
    summary = await run_demo(_options(tmp_path, "moderate"), out=io.StringIO())
    assert summary["purchases_paid"] > 0
    assert summary["silent_losses"] == 0
    assert summary["duplicates"]["total"] == 0
    explained = {item["reference"] for item in summary["lost"]}
    assert summary["tokens_applied"] + len(explained) >= summary["purchases_paid"]


def test_bad_fault_specs_are_refused_with_exit_2() -> None:
    result = CliRunner().invoke(app, ["demo", "--faults", "loss=2"])
    assert result.exit_code == 2
    assert "between 0 and 1" in result.stderr
    result = CliRunner().invoke(app, ["demo", "--faults", "gremlins=0.1"])
    assert result.exit_code == 2 and "not a fault" in result.stderr
