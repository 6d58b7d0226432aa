"""The hub worker's configuration: the shipped example, secrets, `pintar hub --check`, and
a worker refusing to start on an unmigrated database."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

import pytest
from typer.testing import CliRunner

from operator_data.cli.main import app
from operator_data.settings import SettingsError, load_settings
from p2apst_adapter.dialect.framing import Framing

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "hub.example.toml"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in os.environ:
        if key.startswith("PINTAR_"):
            monkeypatch.delenv(key)


def test_the_shipped_example_loads_and_validates() -> None:
    settings = load_settings(EXAMPLE)
    mqtt = settings.mqtt.mqtt_settings()
    assert (mqtt.host, mqtt.port, mqtt.username, mqtt.password) == (
        "mosquitto",
        8883,
        "hub",
        None,
    )
    assert mqtt.tls_ca_file == "/etc/pintar/tls/ca.crt"
    assert mqtt.topics.shared_events(settings.mqtt.group) == "$share/hub/pintar/v1/gw/+/events"
    assert settings.p2apst.host == "p2apst.pln.internal"
    assert settings.p2apst.framing is Framing.LENGTH_PREFIX
    assert settings.web.enabled and settings.web.port == 8080


def test_defaults_have_no_p2apst_and_no_web() -> None:
    settings = load_settings()
    assert settings.p2apst.host is None and not settings.web.enabled


def test_the_broker_password_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PINTAR_MQTT__PASSWORD", "s3cret")
    monkeypatch.setenv("PINTAR_MQTT__HOST", "10.0.0.5")
    mqtt = load_settings(EXAMPLE).mqtt.mqtt_settings()
    assert (mqtt.host, mqtt.password) == ("10.0.0.5", "s3cret")


def test_a_broker_password_in_the_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "hub.toml"
    path.write_text('[mqtt]\npassword = "plain"\n')
    with pytest.raises(SettingsError, match=r"mqtt\.password must not be written"):
        load_settings(path)


def test_a_password_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "mqtt.pass"
    secret.write_text("s3cret\n")
    secret.chmod(0o644)
    path = tmp_path / "hub.toml"
    path.write_text(f'[mqtt]\npassword_file = "{secret}"\n')
    with pytest.raises(SettingsError, match="chmod 600"):
        load_settings(path)
    secret.chmod(0o600)
    assert load_settings(path).mqtt.secret() == "s3cret"


@pytest.mark.parametrize(
    ("toml", "field"),
    [
        ('[mqtt]\ntopic_root = "pintar/#"\n', "mqtt.topic_root"),
        ('[mqtt]\ngroup = "a/b"\n', "mqtt.group"),
        ('[mqtt]\ntls_cert_file = "/c.crt"\n', "mqtt"),
        ('[p2apst]\nframing = "xml"\n', "p2apst.framing"),
        ("[web]\nport = 70000\n", "web.port"),
        ("[mqtt]\nport = 0\n", "mqtt.port"),
    ],
)
def test_bad_values_name_their_field(tmp_path: Path, toml: str, field: str) -> None:
    path = tmp_path / "hub.toml"
    path.write_text(toml)
    with pytest.raises(SettingsError, match=field):
        load_settings(path)


def test_check_prints_the_effective_config_with_secrets_hidden(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PINTAR_MQTT__PASSWORD", "mqtt-s3cret")
    monkeypatch.setenv("PINTAR_DATABASE__URL", "postgresql+asyncpg://pintar:db-s3cret@db/pintar")
    monkeypatch.setenv("PINTAR_SECURITY__MASTER_KEY", secrets.token_hex(32))
    result = CliRunner().invoke(
        app, ["hub", "--check", "--config", str(EXAMPLE), "--worker-id", "w1"]
    )
    assert result.exit_code == 0, result.output
    assert "s3cret" not in result.output
    document = json.loads(result.output)
    assert document["hub"] == "w1"
    assert document["mqtt"]["password"] == "set" and document["master_key"] == "set"
    assert "db-s3cret" not in document["database"] and "@db/pintar" in document["database"]
    assert document["mqtt"]["events"] == "$share/hub/pintar/v1/gw/+/events"
    assert document["p2apst"]["host"] == "p2apst.pln.internal"


def test_check_refuses_a_bad_file_with_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "hub.toml"
    path.write_text("[mqtt]\nport = 0\n")
    result = CliRunner().invoke(app, ["hub", "--check", "--config", str(path)])
    assert result.exit_code == 2
    assert "mqtt.port" in result.output


def test_a_worker_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    key = tmp_path / "master.key"
    key.write_text(secrets.token_hex(32))
    key.chmod(0o600)
    path = tmp_path / "hub.toml"
    path.write_text(f'data_dir = "{tmp_path}"\n[security]\nmaster_key_file = "{key}"\n')
    result = CliRunner().invoke(app, ["hub", "--config", str(path)])
    assert result.exit_code == 2
    assert "pintar db upgrade" in result.output


def test_a_worker_without_a_master_key_refuses_to_start(tmp_path: Path) -> None:
    path = tmp_path / "hub.toml"
    path.write_text(f'data_dir = "{tmp_path}"\n')
    result = CliRunner().invoke(app, ["hub", "--config", str(path)])
    assert result.exit_code == 2
    assert "master key" in result.output
