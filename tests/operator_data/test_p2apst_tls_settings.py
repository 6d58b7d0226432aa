"""`[p2apst]` TLS settings: off by default, checked when loaded, turned into the client's
TLS context by the hub worker, and refused with a clear message (exit 2) when unusable."""

from __future__ import annotations

import os
import secrets
import ssl
from pathlib import Path

import pytest
from typer.testing import CliRunner

from operator_data.cli.main import app
from operator_data.hub.service import client_settings
from operator_data.settings import SettingsError, load_settings
from tests.p2apst_adapter.test_tls import Authority, Issued


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in os.environ:
        if key.startswith("PINTAR_"):
            monkeypatch.delenv(key)


@pytest.fixture
def issued(tmp_path: Path) -> tuple[Authority, Issued]:
    authority = Authority(tmp_path, "pln")
    return authority, authority.issue("switcher-1", server=False)


def _config(tmp_path: Path, lines: str) -> Path:
    path = tmp_path / "hub.toml"
    path.write_text('[p2apst]\nhost = "127.0.0.1"\n' + lines)
    return path


def test_tls_is_off_by_default() -> None:
    settings = load_settings(p2apst={"host": "p2apst.test"})
    assert settings.p2apst.tls_context() is None
    assert client_settings(settings).tls is None


def test_tls_settings_make_the_clients_context(
    tmp_path: Path, issued: tuple[Authority, Issued]
) -> None:
    authority, cert = issued
    path = _config(
        tmp_path,
        f'tls_ca_file = "{authority.ca_file}"\ntls_cert_file = "{cert.cert}"\n'
        f'tls_key_file = "{cert.key}"\ntls_server_name = "p2apst.test"\n',
    )
    made = client_settings(load_settings(path))
    assert isinstance(made.tls, ssl.SSLContext) and made.tls_server_name == "p2apst.test"
    assert made.tls.verify_mode is ssl.CERT_REQUIRED and made.tls.check_hostname
    assert made.tls.minimum_version >= ssl.TLSVersion.TLSv1_2


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ('tls_cert_file = "{cert}"\ntls_key_file = "{key}"\n', "needs tls_ca_file"),
        ('tls_ca_file = "{ca}"\ntls_cert_file = "{cert}"\n', "go together"),
        ('tls_server_name = "p2apst.test"\n', "needs tls_ca_file"),
    ],
)
def test_incomplete_tls_settings_are_refused(
    tmp_path: Path, issued: tuple[Authority, Issued], lines: str, message: str
) -> None:
    authority, cert = issued
    text = lines.format(ca=authority.ca_file, cert=cert.cert, key=cert.key)
    with pytest.raises(SettingsError, match=message):
        load_settings(_config(tmp_path, text))


def test_a_key_others_can_read_is_refused(tmp_path: Path, issued: tuple[Authority, Issued]) -> None:
    authority, cert = issued
    cert.key.chmod(0o644)
    lines = (
        f'tls_ca_file = "{authority.ca_file}"\ntls_cert_file = "{cert.cert}"\n'
        f'tls_key_file = "{cert.key}"\n'
    )
    with pytest.raises(SettingsError, match="readable by others"):
        load_settings(_config(tmp_path, lines))


def test_hub_check_names_an_unusable_tls_file_and_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PINTAR_SECURITY__MASTER_KEY", secrets.token_hex(32))
    path = _config(tmp_path, f'tls_ca_file = "{tmp_path / "missing-ca.crt"}"\n')
    result = CliRunner().invoke(app, ["hub", "--check", "--config", str(path)])
    assert result.exit_code == 2
    assert "p2apst TLS" in result.stderr and "missing-ca.crt: no such file" in result.stderr
