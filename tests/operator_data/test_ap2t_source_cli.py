"""`pintar ap2t export` / `deliver` on a SQLite file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from operator_data.cli.main import app
from tests.operator_data.test_sla_cli import seeded

pytestmark = pytest.mark.timeout(60)


def test_export_prints_the_manifest(tmp_path: Path) -> None:
    cfg = seeded(tmp_path, ap2t=True)
    out = tmp_path / "out"
    args = ["ap2t", "export", "--date", "2026-03-02", "--out", str(out), "--config", str(cfg)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    manifest = json.loads(result.stdout)
    assert (manifest["file"], manifest["record_count"]) == ("ap2t-20260302.csv", 3)
    assert (out / "ap2t-20260302.csv").exists()
    again = CliRunner().invoke(app, args)
    assert json.loads(again.stdout)["sha256"] == manifest["sha256"]


def test_deliver_to_a_drop_directory(tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    cfg = seeded(tmp_path, f'[ap2t]\ndirectory = "{drop}"\n', ap2t=True)
    result = CliRunner().invoke(
        app, ["ap2t", "deliver", "--date", "2026-03-02", "--config", str(cfg)]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["receipt"] == "dropped:ap2t-20260302.csv"
    assert (drop / "ap2t-20260302.manifest.json").exists()


def test_bad_input_exits_2(tmp_path: Path) -> None:
    cfg = seeded(tmp_path)
    runner = CliRunner()
    no_target = runner.invoke(
        app, ["ap2t", "deliver", "--date", "2026-03-02", "--config", str(cfg)]
    )
    assert no_target.exit_code == 2 and "no AP2T delivery" in no_target.stderr
    bad_date = runner.invoke(app, ["ap2t", "export", "--date", "2-3-2026", "--config", str(cfg)])
    assert bad_date.exit_code == 2


def test_progress_bar_on_a_terminal(tmp_path: Path) -> None:
    """On a pseudo-terminal the export shows a rich progress bar, then the manifest."""
    cfg = seeded(tmp_path, ap2t=True)
    master, slave = os.openpty()
    pintar = Path(sys.executable).parent / "pintar"
    args = [str(pintar), "ap2t", "export", "--date", "2026-03-02", "--config", str(cfg)]
    with subprocess.Popen(args, stdout=slave, stderr=slave, stdin=subprocess.DEVNULL) as proc:
        os.close(slave)
        chunks = []
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        assert proc.wait(timeout=30) == 0
    os.close(master)
    shown = b"".join(chunks).decode("utf-8", "replace")
    assert "AP2T 2026-03-02" in shown
    assert '"record_count": 3' in shown


def test_overdue_command(tmp_path: Path) -> None:
    cfg = seeded(tmp_path)
    result = CliRunner().invoke(app, ["ap2t", "overdue", "--config", str(cfg)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["overdue"] is True  # nothing was ever acknowledged
