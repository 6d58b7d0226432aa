"""deploy/prometheus/: the alerting rules pass promtool, their unit tests pass (each alert
fires on a synthetic series and stays quiet otherwise), and they name only real metrics."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]

from tests.promql_names import ROOT, exported_metrics, names_in, problems, promtool

PROMETHEUS = ROOT / "deploy" / "prometheus"
RULES = PROMETHEUS / "pintar-alerts.yml"
UNIT_TESTS = PROMETHEUS / "tests.yml"
EXAMPLE_CONFIG = PROMETHEUS / "prometheus.yml"
_SERIES_NAME = re.compile(r"\s*([A-Za-z_:][A-Za-z0-9_:]*)")


def _load(path: Path) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(document, dict), f"{path} is not a YAML mapping"
    return document


def _rules() -> list[dict[str, Any]]:
    return [rule for group in _load(RULES)["groups"] for rule in group["rules"]]


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_promtool_checks_the_rules() -> None:
    result = _promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(_rules())} rules found" in result.stdout


def test_promtool_unit_tests_of_the_rules_pass() -> None:
    result = _promtool("test", "rules", str(UNIT_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_checks_the_example_scrape_config() -> None:
    result = _promtool("check", "config", str(EXAMPLE_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    assert _load(EXAMPLE_CONFIG)["rule_files"] == [RULES.name]
    jobs = [job["job_name"] for job in _load(EXAMPLE_CONFIG)["scrape_configs"]]
    assert "pintar-hub" in jobs  # the job name PintarHubDown selects


def test_a_failing_unit_test_is_reported(tmp_path: Path) -> None:
    # The unit tests above prove something only if promtool fails them when an alert is
    # wrong: make one never fire and see the run fail.
    broken = RULES.read_text(encoding="utf-8").replace(
        "expr: max(pintar_outbox_pending) > 1000", "expr: max(pintar_outbox_pending) > 1e9"
    )
    assert broken != RULES.read_text(encoding="utf-8")
    (tmp_path / RULES.name).write_text(broken, encoding="utf-8")
    (tmp_path / UNIT_TESTS.name).write_text(UNIT_TESTS.read_text(encoding="utf-8"))
    result = _promtool("test", "rules", str(tmp_path / UNIT_TESTS.name))
    assert result.returncode != 0
    assert "PintarOutboxBacklog" in result.stdout + result.stderr


def test_every_alert_is_tested_firing_and_quiet() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    for case in _load(UNIT_TESTS)["tests"]:
        for check in case.get("alert_rule_test", []):
            (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    alerts = {rule["alert"] for rule in _rules()}
    assert alerts, "no alerts in the rules file"
    assert alerts - firing == set(), "alerts never shown firing"
    assert alerts - quiet == set(), "alerts never shown quiet"
    assert (firing | quiet) - alerts == set(), "unit tests of alerts that do not exist"


def test_every_alert_says_how_bad_and_what_happened() -> None:
    for rule in _rules():
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        assert rule["annotations"]["description"], rule["alert"]


def test_rules_name_only_metrics_and_labels_the_code_exports() -> None:
    exported = exported_metrics()
    found = {rule["alert"]: problems(rule["expr"], exported) for rule in _rules()}
    assert {alert: p for alert, p in found.items() if p} == {}


def test_unit_test_inputs_are_series_the_code_exports() -> None:
    # An input series under a made-up name would test a rule against data no hub produces.
    exported = exported_metrics()
    for case in _load(UNIT_TESTS)["tests"]:
        for item in case["input_series"]:
            series = item["series"]
            match = _SERIES_NAME.match(series)
            assert match is not None, series
            assert problems(series, exported) == [], series


def test_the_name_check_finds_what_is_not_exported() -> None:
    exported = exported_metrics()
    assert "pintar_outbox_pending" in exported
    assert exported["pintar_sms_today"] == {"direction", "flow", "state"}
    names = names_in('sum by (flow) (rate(x_total{a="b", c=~"d"}[5m] offset 1h)) > 1e3')
    assert names.metrics == {"x_total": {"a", "c"}}
    assert names.grouping == {"flow"}
    assert problems('pintar_outbox_pending{flow="x"} + nothing_here', exported) == [
        "nothing_here is not exported by operator_data, gateway, p2apst_adapter",
        "pintar_outbox_pending has no label 'flow' (it has [])",
    ]
    assert problems("sum by (colour) (up)", exported) == [
        "no exported metric has the label 'colour' grouped on"
    ]
    assert problems("vector(1)", exported) == ["'vector(1)' names no metric"]


def test_the_debian_package_with_promtool_is_installed_by_the_test_script() -> None:
    packages = (ROOT / "scripts" / "apt-packages.txt").read_text(encoding="utf-8").split("\n")
    assert "prometheus" in [line.strip() for line in packages]
