"""bench/token_e2e's gateway configs: each carrier's file is one `pintar gateway` accepts,
pointing at what the world runs (the SMSC's port and account, or the modems' ptys)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench import token_e2e
from gateway.config import CarrierKind, load_gateway_config


@pytest.fixture(autouse=True)
def _no_gateway_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # The config also reads PINTAR_* variables; none may leak in from the shell.
    for name in list(os.environ):
        if name.startswith("PINTAR_"):
            monkeypatch.delenv(name)


def test_the_smpp_config_binds_to_the_worlds_smsc_as_the_short_code(tmp_path: Path) -> None:
    secret = tmp_path / "smpp.password"
    token_e2e._write_secret(secret, "s3cret")
    path = token_e2e._gateway_config(
        tmp_path, "pintar-bench-x/v1", token_e2e._smpp_carrier(2775, secret)
    )
    config = load_gateway_config(path)
    assert config.carrier is CarrierKind.SMPP and not config.modems
    assert config.smpp is not None
    settings = config.smpp.smpp_settings(config.name)
    assert (settings.host, settings.port) == ("127.0.0.1", 2775)
    assert (settings.system_id, settings.password) == (token_e2e.SMPP_SYSTEM_ID, "s3cret")
    assert settings.source_addr == token_e2e.SHORT_CODE
    assert settings.window == token_e2e.SMPP_WINDOW
    assert config.mqtt.topic_root == "pintar-bench-x/v1"


def test_the_modems_config_drives_every_pty(tmp_path: Path) -> None:
    ports = ["/dev/pts/91", "/dev/pts/92"]
    path = token_e2e._gateway_config(tmp_path, "r/v1", token_e2e._modems_carrier(ports))
    config = load_gateway_config(path)
    assert config.carrier is CarrierKind.MODEMS and config.smpp is None
    assert [m.port for m in config.modems] == ports
    assert config.pool.min_interval == 0.0
