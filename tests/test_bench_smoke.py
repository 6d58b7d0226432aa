"""Every benchmark still runs (tiny sizes) and the report is written; no figure is judged."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bench import gammu_smsd
from bench.run import benchmarks, run
from operator_data.cli.main import app

pytestmark = pytest.mark.timeout(180)


def test_every_benchmark_runs_at_a_tiny_size_and_the_report_matches(tmp_path: Path) -> None:
    lines: list[str] = []
    sections = run(["all"], smoke=True, docs=tmp_path, log=lines.append)

    assert [s.name for s in sections] == list(benchmarks())
    for section in sections:
        if section.name == "gammu_compare" and gammu_smsd.available() is None:
            assert "not installed" in " ".join(section.notes)
            continue
        assert section.rows, section.name
        for row in section.rows:
            assert row.value is not None and math.isfinite(row.value) and row.value > 0, row

    document = json.loads((tmp_path / "benchmarks.json").read_text())
    assert {"cpu", "cores", "ram_gib", "python", "date", "commit"} <= set(document["machine"])
    written = {s["name"]: s for s in document["sections"]}
    assert "hub-pipeline" not in written  # the placeholder is gone once measured
    for section in sections:
        assert [r["value"] for r in written[section.name]["rows"]] == [
            r.value for r in section.rows
        ]
    markdown = (tmp_path / "benchmarks.md").read_text()
    assert "python -m bench.run" in markdown and "not yet measured" not in markdown
    assert "Hub inbound pipeline" in markdown
    assert "AP2T export" in markdown


def test_rerunning_one_benchmark_keeps_the_others_figures(tmp_path: Path) -> None:
    run(["ap2t_export"], sizes={"ap2t_export": 50}, docs=tmp_path, log=lambda _: None)
    run(["p2apst_throughput"], smoke=True, docs=tmp_path, log=lambda _: None)
    names = [s["name"] for s in json.loads((tmp_path / "benchmarks.json").read_text())["sections"]]
    assert names == ["p2apst_throughput", "ap2t_export"]


def test_cli_lists_benchmarks_and_rejects_bad_input() -> None:
    runner = CliRunner()
    listed = runner.invoke(app, ["bench", "list"])
    assert listed.exit_code == 0, listed.output
    assert [b["name"] for b in json.loads(listed.stdout)] == list(benchmarks())
    unknown = runner.invoke(app, ["bench", "run", "no-such-bench", "--no-write"])
    assert unknown.exit_code == 2
    bad_size = runner.invoke(app, ["bench", "run", "--size", "ap2t_export", "--no-write"])
    assert bad_size.exit_code == 2


def test_the_old_hub_placeholder_is_dropped_from_earlier_reports(tmp_path: Path) -> None:
    placeholder = {"name": "hub-pipeline", "title": "Hub pipeline", "size": 0, "rows": []}
    (tmp_path / "benchmarks.json").write_text(json.dumps({"sections": [placeholder]}))
    run(["ap2t_export"], sizes={"ap2t_export": 50}, docs=tmp_path, log=lambda _: None)
    names = [s["name"] for s in json.loads((tmp_path / "benchmarks.json").read_text())["sections"]]
    assert names == ["ap2t_export"]
