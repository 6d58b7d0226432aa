"""The gateway node's configuration: the shipped example, environment, secrets."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gateway.config import CarrierKind, GatewayConfigError, load_gateway_config
from gateway.smpp import LongMessages
from operator_data.cli.main import app

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "gateway.example.toml"

SMPP = """
name = "gw-smpp"
carrier = "smpp"
[smpp]
host = "127.0.0.1"
port = 2775
system_id = "pintar"
long_messages = "payload"
"""


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in os.environ:
        if key.startswith("PINTAR_GATEWAY_"):
            monkeypatch.delenv(key)


def test_the_shipped_example_loads_and_validates() -> None:
    config = load_gateway_config(EXAMPLE)
    assert config.name == "gw-jkt-1" and config.carrier is CarrierKind.MODEMS
    assert [m.modem_config().label for m in config.modems] == ["m1", "m2"]
    mqtt = config.mqtt.settings(config.name)
    assert (mqtt.port, mqtt.username, mqtt.password) == (8883, "gw-jkt-1", None)
    assert mqtt.tls_ca_file == "/etc/pintar/tls/ca.crt"
    assert mqtt.topics.send(config.name) == "pintar/v1/gw/gw-jkt-1/send"
    assert config.pool.pool_config().min_interval == 6.0


def test_environment_overrides_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PINTAR_GATEWAY_MQTT__HOST", "10.0.0.5")
    monkeypatch.setenv("PINTAR_GATEWAY_MQTT__PASSWORD", "s3cret")
    monkeypatch.setenv("PINTAR_GATEWAY_NAME", "gw-sby-2")
    config = load_gateway_config(EXAMPLE)
    mqtt = config.mqtt.settings(config.name)
    assert (mqtt.host, mqtt.password, mqtt.username) == ("10.0.0.5", "s3cret", "gw-sby-2")


@pytest.mark.parametrize("section", ["mqtt", "smpp"])
def test_a_password_in_the_file_is_refused(tmp_path: Path, section: str) -> None:
    text = SMPP if section == "smpp" else SMPP + "[mqtt]\n"
    path = tmp_path / "gw.toml"
    path.write_text(text.replace(f"[{section}]\n", f'[{section}]\npassword = "plain"\n'))
    with pytest.raises(GatewayConfigError, match=f"{section}.password must not be written"):
        load_gateway_config(path)


def test_password_files_must_be_private(tmp_path: Path) -> None:
    secret = tmp_path / "smpp-password"
    secret.write_text("pw-from-file\n")
    path = tmp_path / "gw.toml"
    path.write_text(SMPP + f'password_file = "{secret}"\n')
    secret.chmod(0o644)
    with pytest.raises(GatewayConfigError, match="chmod 600"):
        load_gateway_config(path)
    secret.chmod(0o600)
    config = load_gateway_config(path)
    assert config.smpp is not None
    link = config.smpp.smpp_settings(config.name)
    assert (link.password, link.name, link.long_messages) == (
        "pw-from-file",
        "gw-smpp",
        LongMessages.PAYLOAD,
    )
    assert config.receipts_path.name == "gateway-spool-smsc-ids.db"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('name = "gw"\ncarrier = "smpp"\n', "needs an \\[smpp\\] section"),
        ('name = "gw"\n', "at least one \\[\\[modems\\]\\]"),
        ('name = "Bad/Name"\n[[modems]]\nport = "/dev/x"\n', "name"),
        ('name = "gw"\n[[modems]]\nport = "/dev/x"\n[[modems]]\nport = "/dev/x"\n', "unique"),
        ('name = "gw"\nspeed = 1\n[[modems]]\nport = "/dev/x"\n', "speed"),
        ('name = "gw"\n[mqtt]\ntls_cert_file = "c"\n[[modems]]\nport = "/dev/x"\n', "together"),
    ],
)
def test_bad_configurations_name_the_problem(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "gw.toml"
    path.write_text(text)
    with pytest.raises(GatewayConfigError, match=problem):
        load_gateway_config(path)


def test_the_cli_checks_a_config_without_showing_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PINTAR_GATEWAY_MQTT__PASSWORD", "s3cret")
    result = CliRunner().invoke(app, ["gateway", "--check", "--config", str(EXAMPLE)])
    assert result.exit_code == 0, result.output
    assert "s3cret" not in result.output
    document = json.loads(result.output)
    assert document["mqtt"]["password"] == "set"
    assert document["mqtt"]["topics"] == "pintar/v1/gw/gw-jkt-1/#"
    assert document["modems"] == ["m1", "m2"]


def test_the_cli_refuses_a_bad_config_with_status_2(tmp_path: Path) -> None:
    path = tmp_path / "gw.toml"
    path.write_text('name = "gw"\ncarrier = "smpp"\n')
    result = CliRunner().invoke(app, ["gateway", "--check", "--config", str(path)])
    assert result.exit_code == 2
    assert "needs an [smpp] section" in result.output


MODEMS = 'name = "gw"\n[[modems]]\nport = "/dev/x"\n'


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (MODEMS, 30.0),
        ("redeliver_after = 12.5\n" + MODEMS, 12.5),
        # The setting's older home, where configs written for the MQTT bridge have it.
        (MODEMS + "[mqtt]\nredeliver_after = 5.0\n", 5.0),
        ("redeliver_after = 5.0\n" + MODEMS + "[mqtt]\nredeliver_after = 5.0\n", 5.0),
    ],
)
def test_the_redelivery_interval_comes_from_either_name(
    tmp_path: Path, text: str, expected: float
) -> None:
    path = tmp_path / "gw.toml"
    path.write_text(text)
    assert load_gateway_config(path).event_redeliver_after == expected


def test_the_older_redelivery_setting_works_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text(MODEMS)
    monkeypatch.setenv("PINTAR_GATEWAY_MQTT__REDELIVER_AFTER", "7")
    assert load_gateway_config(config).event_redeliver_after == 7.0


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("redeliver_after = 10.0\n" + MODEMS + "[mqtt]\nredeliver_after = 5.0\n", "disagree"),
        ("redeliver_after = 0\n" + MODEMS, "redeliver_after"),
    ],
)
def test_a_bad_redelivery_interval_is_refused(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "gw.toml"
    path.write_text(text)
    with pytest.raises(GatewayConfigError, match=problem):
        load_gateway_config(path)
