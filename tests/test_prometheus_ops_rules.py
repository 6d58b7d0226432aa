"""The operations alerts' unit tests (deploy/prometheus/tests.yml) catch the mistakes that
matter in them: each rule below is broken on purpose in a copy, and promtool must fail
that rule's tests. (tests/test_prometheus_rules.py runs the suite as shipped.)"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.promql_names import ROOT, promtool

PROMETHEUS = ROOT / "deploy" / "prometheus"
RULES = PROMETHEUS / "pintar-alerts.yml"
UNIT_TESTS = PROMETHEUS / "tests.yml"
NEWEST_STATE = "topk by (gateway, modem) (1, pintar_modem_state_timestamp_seconds)"


@pytest.mark.parametrize(
    ("alert", "shipped", "broken"),
    [
        # Every worker's state counted, not the newest: a modem that went down still
        # looks up by the older state another worker holds.
        ("PintarModemDown", NEWEST_STATE, "pintar_modem_state_timestamp_seconds"),
        # A modem without network counted as down too: two alerts for one fault.
        ("PintarModemDown", "          unless on (gateway, modem)\n", "          or\n"),
        # No window over the re-probes: each `starting` in between restarts the wait.
        (
            "PintarModemNoNetwork",
            "[15m:1m]) == 1\n          and on (gateway, modem)",
            "[30s:1m]) == 1\n          and on (gateway, modem)",
        ),
        # Every worker's reading counted, not the newest: a recovered modem keeps alerting
        # by the weak reading an older worker holds (and a weak one hides behind a good).
        (
            "PintarModemWeakSignal",
            "pintar_modem_signal_percent\n            and on (instance, gateway, modem)\n"
            "            " + NEWEST_STATE,
            "pintar_modem_signal_percent\n            and on (instance, gateway, modem)\n"
            "            pintar_modem_state_timestamp_seconds",
        ),
        # A modem down alerts as weak too: two alerts for one fault.
        (
            "PintarModemWeakSignal",
            "          ) < 10\n          and on (gateway, modem)",
            "          ) < 10\n          or on (gateway, modem)",
        ),
        # Summed across workers instead of the max: one fault, twice the size.
        (
            "PintarGatewaySpoolGrowth",
            "max by (gateway, state) (pintar_gateway_spool_rows)\n            - max",
            "sum by (gateway, state) (pintar_gateway_spool_rows)\n            - sum",
        ),
        # The report's time ignored: a gateway that stopped reporting looks alive.
        (
            "PintarGatewaySilent",
            "time() - max by (gateway) (pintar_gateway_spool_timestamp_seconds) > 300",
            "max by (gateway) (pintar_gateway_spool_timestamp_seconds) < 0",
        ),
        # Per worker lost: the worker whose link is down is not named.
        (
            "PintarP2apstLinkDown",
            "max by (instance, worker) (pintar_p2apst_link_up) == 0",
            "max(pintar_p2apst_link_up) == 0",
        ),
        ("PintarAp2tOverdue", "max(pintar_ap2t_overdue) == 1", "max(pintar_ap2t_overdue) == 2"),
        # A threshold moved: one overdue complaint no longer counts.
        (
            "PintarComplaintsOverdue",
            "max(pintar_complaints_overdue) > 0",
            "max(pintar_complaints_overdue) > 1",
        ),
        (
            "PintarComplaintsPastMonthEnd",
            "max(pintar_complaints_past_month_end) > 0",
            "max(pintar_complaints_past_month_end) > 1",
        ),
        # Per worker lost: the worker whose store stalls is not named.
        (
            "PintarStoreDown",
            "min by (instance) (pintar_store_up) == 0",
            "min(pintar_store_up) == 0",
        ),
        (
            "PintarOutboxBacklogAge",
            "max(pintar_outbox_oldest_age_seconds) > 900",
            "max(pintar_outbox_oldest_age_seconds) > 90",
        ),
    ],
)
def test_a_broken_operations_rule_fails_its_unit_tests(
    tmp_path: Path, alert: str, shipped: str, broken: str
) -> None:
    rules = RULES.read_text(encoding="utf-8")
    assert shipped in rules, f"{shipped!r} is no longer in {RULES.name}: update this test"
    (tmp_path / RULES.name).write_text(rules.replace(shipped, broken), encoding="utf-8")
    (tmp_path / UNIT_TESTS.name).write_text(UNIT_TESTS.read_text(encoding="utf-8"))
    result = subprocess.run(
        [promtool(), "test", "rules", str(tmp_path / UNIT_TESTS.name)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0, result.stdout
    assert f"alertname: {alert}" in result.stdout + result.stderr
