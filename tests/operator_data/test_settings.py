"""Settings: TOML + environment, and every validation that protects the service."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from pathlib import Path

import pytest

from operator_data.settings import SettingsError, load_settings
from operator_data.store import Flow

KEY = secrets.token_hex(32)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("PINTAR_"):
            monkeypatch.delenv(name)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pintar.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_are_valid() -> None:
    settings = load_settings()
    assert settings.service.short_code == "87000"
    assert settings.sla.report_to_p2apst_s == 5 and settings.sla.token_to_network_s == 10
    assert settings.sla.meter_answer_s == 300 and settings.sla.ap2t_batch_interval_h == 24
    assert settings.retention.usage_records_months == 3
    assert settings.security.load_master_key() is None
    assert settings.database.effective_url(Path("/srv/p")) == "sqlite+aiosqlite:////srv/p/pintar.db"


def test_toml_then_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = write(
        tmp_path,
        """
        [database]
        url = "postgresql+asyncpg://hub@db/pintar"
        [service]
        short_code = "81234"
        [pin]
        max_attempts = 5
        """,
    )
    monkeypatch.setenv("PINTAR_PIN__MAX_ATTEMPTS", "4")
    monkeypatch.setenv("PINTAR_SECURITY__MASTER_KEY", KEY)
    settings = load_settings(config)
    assert settings.database.url == "postgresql+asyncpg://hub@db/pintar"
    assert settings.service.short_code == "81234"
    assert settings.pin.max_attempts == 4  # environment wins over the file
    master = settings.security.load_master_key()
    assert master is not None and master.key == bytes.fromhex(KEY)
    assert KEY not in repr(settings) and KEY not in repr(master)


@pytest.mark.parametrize("code", ["112", "110", "8123", "81234 ", "91234", "812345", "8ABCD"])
def test_bad_short_code_refused(code: str, tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"service\.short_code"):
        load_settings(write(tmp_path, f'[service]\nshort_code = "{code}"\n'))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("usage_records_months", 2),
        ("customer_data_months_after_inactive", 1),
        ("sla_financial_years_after", 0),
        ("complaint_months", 2),
    ],
)
def test_retention_below_legal_minimum_refused(field: str, value: int, tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=f"{field}={value} is below the legal minimum"):
        load_settings(write(tmp_path, f"[retention]\n{field} = {value}\n"))


def test_retention_above_minimum_accepted(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, "[retention]\nusage_records_months = 24\n"))
    assert settings.retention.usage_records_months == 24


def test_master_key_never_from_the_config_file(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="must not be written in the config file"):
        load_settings(write(tmp_path, f'[security]\nmaster_key = "{KEY}"\n'))


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o606])
def test_readable_key_file_refused(mode: int, tmp_path: Path) -> None:
    key_file = tmp_path / "master.key"
    key_file.write_text(KEY + "\n")
    key_file.chmod(mode)
    config = write(tmp_path, f'[security]\nmaster_key_file = "{key_file}"\n')
    with pytest.raises(SettingsError, match="group/others must have no access"):
        load_settings(config)


@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_private_key_file_accepted(mode: int, tmp_path: Path) -> None:
    key_file = tmp_path / "master.key"
    key_file.write_text(KEY + "\n")
    key_file.chmod(mode)
    settings = load_settings(write(tmp_path, f'[security]\nmaster_key_file = "{key_file}"\n'))
    master = settings.security.load_master_key()
    assert master is not None and master.key.hex() == KEY


def test_malformed_or_doubled_master_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PINTAR_SECURITY__MASTER_KEY", "abc")
    with pytest.raises(SettingsError, match="64 hex digits"):
        load_settings()
    key_file = tmp_path / "master.key"
    key_file.write_text(KEY)
    key_file.chmod(0o600)
    monkeypatch.setenv("PINTAR_SECURITY__MASTER_KEY", KEY)
    monkeypatch.setenv("PINTAR_SECURITY__MASTER_KEY_FILE", str(key_file))
    with pytest.raises(SettingsError, match="not both"):
        load_settings()


def test_sla_and_pin_bounds(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"sla\.ap2t_batch_interval_h"):
        load_settings(write(tmp_path, "[sla]\nap2t_batch_interval_h = 48\n"))
    with pytest.raises(SettingsError, match=r"sla\.token_to_network_s"):
        load_settings(write(tmp_path, "[sla]\ntoken_to_network_s = 0\n"))
    with pytest.raises(SettingsError, match=r"pin\.max_attempts"):
        load_settings(write(tmp_path, "[pin]\nmax_attempts = 0\n"))


def test_unknown_keys_and_bad_toml(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="shortcode"):
        load_settings(write(tmp_path, '[service]\nshortcode = "81234"\n'))
    with pytest.raises(SettingsError, match="config file"):
        load_settings(write(tmp_path, "[service\n"))
    with pytest.raises(SettingsError, match="config file"):
        load_settings(tmp_path / "missing.toml")


def _prices(*versions: tuple[str, str]) -> str:
    lines = []
    for name, start in versions:
        lines.append(f'[[prices.versions]]\nversion = "{name}"\neffective_from = {start}\n')
        lines.append("[prices.versions.prices_idr]\n")
        lines.extend(f"{flow.value} = {100 + i}\n" for i, flow in enumerate(Flow))
    return "".join(lines)


def test_price_table_versions(tmp_path: Path) -> None:
    settings = load_settings(
        write(
            tmp_path,
            _prices(("2025a", "2025-01-01T00:00:00+07:00"), ("2026a", "2026-01-01T00:00:00+07:00")),
        )
    )
    table = settings.prices
    assert table.at(datetime(2025, 6, 1, tzinfo=UTC)).version == "2025a"
    assert table.at(datetime(2026, 6, 1, tzinfo=UTC)).version == "2026a"
    assert table.at(datetime(2026, 6, 1, tzinfo=UTC)).prices_idr[Flow.HUB_TO_METER] == 101
    with pytest.raises(LookupError):
        table.at(datetime(2024, 1, 1, tzinfo=UTC))
    with pytest.raises(SettingsError, match="increasing"):
        load_settings(
            write(tmp_path, _prices(("b", "2026-01-01T00:00:00Z"), ("a", "2025-01-01T00:00:00Z")))
        )
    with pytest.raises(SettingsError, match="distinct"):
        load_settings(
            write(tmp_path, _prices(("a", "2025-01-01T00:00:00Z"), ("a", "2026-01-01T00:00:00Z")))
        )
    with pytest.raises(SettingsError, match="timezone"):
        load_settings(
            write(
                tmp_path,
                _prices(
                    ("a", "2025-01-01T00:00:00"),
                ),
            )
        )
    missing = '[[prices.versions]]\nversion = "x"\neffective_from = 2025-01-01T00:00:00Z\n'
    missing += "[prices.versions.prices_idr]\nhub_to_meter = 1\n"
    with pytest.raises(SettingsError, match="no price for flow"):
        load_settings(write(tmp_path, missing))
