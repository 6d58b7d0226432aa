"""JSON logs as a setting (operator_data/logs.py): `logging.format = "json"` for the hub,
`log_format = "json"` for a gateway; one JSON object per line with time, level, logger,
message and the exception's traceback."""

from __future__ import annotations

import io
import json
import logging
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from gateway.config import GatewayConfigError, load_gateway_config
from operator_data.cli import gateway_cmd, hub_cmd
from operator_data.cli.main import app
from operator_data.logs import JsonFormatter, configure_logging
from operator_data.settings import SettingsError, load_settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


@pytest.fixture(autouse=True)
def clean_logging_and_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key in os.environ:
        if key.startswith("PINTAR_"):
            monkeypatch.delenv(key)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    # configure_logging installs a handler on the root logger: take it away again so no
    # later test logs into a stream this one closed.
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)


def _lines(text: str) -> list[dict[str, Any]]:
    entries = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert all(isinstance(entry, dict) for entry in entries)
    return entries


def _fail_once(log: logging.Logger) -> None:
    try:
        raise KeyError("missing")
    except KeyError:
        log.exception("could not look up %s\non two lines", "missing")


def test_a_record_is_one_json_line_with_its_traceback() -> None:
    stream = io.StringIO()
    configure_logging("INFO", "json", stream)
    log = logging.getLogger("pintar.test.json")
    log.info("ready with %d modems", 4)
    _fail_once(log)
    text = stream.getvalue()
    assert len(text.splitlines()) == 2, "a traceback or a newline in a message split a record"
    first, second = _lines(text)
    assert set(first) == {"time", "level", "logger", "message"}
    assert (first["level"], first["logger"], first["message"]) == (
        "INFO",
        "pintar.test.json",
        "ready with 4 modems",
    )
    assert datetime.fromisoformat(first["time"]).utcoffset() == UTC.utcoffset(None)
    assert second["level"] == "ERROR"
    assert second["message"] == "could not look up missing\non two lines"
    assert second["exception"].startswith("Traceback (most recent call last):")
    assert "KeyError: 'missing'" in second["exception"]


def test_the_level_filters_and_a_second_setup_replaces_the_first() -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging("INFO", "json", first)
    configure_logging("warning", "json", second)
    log = logging.getLogger("pintar.test.level")
    log.info("dropped")
    log.warning("kept")
    assert first.getvalue() == ""
    assert [entry["message"] for entry in _lines(second.getvalue())] == ["kept"]


def test_text_stays_the_default_format() -> None:
    stream = io.StringIO()
    configure_logging("INFO", "text", stream)
    logging.getLogger("pintar.test.text").warning("plain")
    assert stream.getvalue().rstrip().endswith("WARNING pintar.test.text: plain")
    with pytest.raises(json.JSONDecodeError):
        json.loads(stream.getvalue())


def test_time_is_the_records_own_in_utc_and_stack_info_is_kept() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "m", None, None, sinfo="Stack (x)")
    record.created = datetime(2026, 1, 2, 3, 4, 5, 678_000, tzinfo=UTC).timestamp()
    entry = json.loads(JsonFormatter().format(record))
    assert entry["time"] == "2026-01-02T03:04:05.678+00:00"
    assert entry["stack"] == "Stack (x)"


@pytest.mark.parametrize(
    ("level", "log_format", "message"),
    [
        ("LOUD", "json", "log level 'LOUD': expected one of DEBUG, INFO"),
        ("INFO", "xml", "log format 'xml': expected one of text, json"),
    ],
)
def test_a_bad_level_or_format_is_refused_before_anything_changes(
    level: str, log_format: Any, message: str
) -> None:
    before = list(logging.getLogger().handlers)
    with pytest.raises(ValueError, match=message):
        configure_logging(level, log_format, io.StringIO())
    assert logging.getLogger().handlers == before


def test_hub_settings_take_the_format_from_file_and_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert load_settings().logging.format == "text"
    path = tmp_path / "hub.toml"
    path.write_text('[logging]\nformat = "json"\nlevel = "WARNING"\n')
    assert (load_settings(path).logging.format, load_settings(path).logging.level) == (
        "json",
        "WARNING",
    )
    monkeypatch.setenv("PINTAR_LOGGING__FORMAT", "text")
    assert load_settings(path).logging.format == "text"
    monkeypatch.setenv("PINTAR_LOGGING__FORMAT", "xml")
    with pytest.raises(SettingsError, match=r"logging\.format"):
        load_settings(path)


def test_gateway_config_takes_the_format(monkeypatch: pytest.MonkeyPatch) -> None:
    example = DEPLOY / "gateway.example.toml"
    assert load_gateway_config(example).log_format == "text"
    monkeypatch.setenv("PINTAR_GATEWAY_LOG_FORMAT", "json")
    assert load_gateway_config(example).log_format == "json"
    monkeypatch.setenv("PINTAR_GATEWAY_LOG_FORMAT", "yaml")
    with pytest.raises(GatewayConfigError, match="log_format"):
        load_gateway_config(example)


def test_pintar_hub_logs_json_lines_on_stderr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def run(settings: Any, worker_id: str, migrate: bool) -> None:
        logging.getLogger("operator_data.hub").info("worker %s up", worker_id)
        _fail_once(logging.getLogger("operator_data.hub"))

    monkeypatch.setattr(hub_cmd, "_run", run)
    path = tmp_path / "hub.toml"
    path.write_text(f'data_dir = "{tmp_path}"\n[logging]\nformat = "json"\n')
    result = CliRunner().invoke(app, ["hub", "--config", str(path), "--worker-id", "w1"])
    assert result.exit_code == 0, result.output
    first, second = _lines(result.stderr)
    assert (first["logger"], first["message"]) == ("operator_data.hub", "worker w1 up")
    assert "KeyError: 'missing'" in second["exception"]


def test_pintar_hub_refuses_a_bad_log_level_with_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "hub.toml"
    path.write_text(f'data_dir = "{tmp_path}"\n')
    result = CliRunner().invoke(app, ["hub", "--config", str(path), "--log-level", "chatty"])
    assert result.exit_code == 2
    assert "log level 'chatty'" in result.stderr


def test_pintar_gateway_logs_json_lines_on_stderr(monkeypatch: pytest.MonkeyPatch) -> None:
    async def run(settings: Any) -> None:
        logging.getLogger("gateway.service").warning("gateway %s up", settings.name)

    monkeypatch.setattr(gateway_cmd, "_run", run)
    monkeypatch.setenv("PINTAR_GATEWAY_LOG_FORMAT", "json")
    result = CliRunner().invoke(app, ["gateway", "--config", str(DEPLOY / "gateway.example.toml")])
    assert result.exit_code == 0, result.output
    (entry,) = _lines(result.stderr)
    assert (entry["level"], entry["logger"], entry["message"]) == (
        "WARNING",
        "gateway.service",
        "gateway gw-jkt-1 up",
    )
