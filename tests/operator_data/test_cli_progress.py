"""Long jobs show a progress bar on a terminal only: piped, their output stays exactly the
machine-readable JSON or CSV, with nothing on stderr. The real `pintar` on real ptys."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from tests.operator_data.test_csv_io import row, to_csv

pytestmark = pytest.mark.timeout(120)

PINTAR = str(Path(sys.executable).parent / "pintar")


def _env(tmp_path: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "PINTAR_DATABASE__URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}",
        "PINTAR_SECURITY__MASTER_KEY": secrets.token_hex(32),
        "TERM": "xterm-256color",
        "COLUMNS": "100",
    }
    env.pop("PINTAR_CONFIG", None)
    return env


def _piped(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PINTAR, *args], capture_output=True, text=True, env=env, timeout=60, check=False
    )


def _stderr_on_a_terminal(args: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    """Run with stdout a pipe and stderr a pty: (status, stdout, what the terminal got)."""
    master, slave = os.openpty()
    with subprocess.Popen(
        [PINTAR, *args], stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL, env=env
    ) as proc:
        os.close(slave)
        shown = []
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            shown.append(data)
        assert proc.stdout is not None
        out = proc.stdout.read().decode()
        status = proc.wait(timeout=60)
    os.close(master)
    return status, out, b"".join(shown).decode("utf-8", "replace")


@pytest.fixture
def registry_env(tmp_path: Path) -> dict[str, str]:
    env = _env(tmp_path)
    assert _piped(["db", "upgrade"], env).returncode == 0
    return env


def test_import_piped_is_bare_json_and_on_a_terminal_shows_progress(
    tmp_path: Path, registry_env: dict[str, str]
) -> None:
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    first.write_text(to_csv([row(n) for n in range(1, 4)]))
    second.write_text(to_csv([row(n) for n in range(4, 7)]))
    piped = _piped(["registry", "import", str(first)], registry_env)
    assert piped.returncode == 0, piped.stderr
    assert piped.stderr == ""
    assert json.loads(piped.stdout)["lines"] == 3
    status, out, shown = _stderr_on_a_terminal(["registry", "import", str(second)], registry_env)
    assert status == 0, shown
    assert json.loads(out)["lines"] == 3  # stdout untouched by the bar
    assert "Importing" in shown


def test_export_piped_is_the_csv_alone_and_on_a_terminal_the_same_csv(
    tmp_path: Path, registry_env: dict[str, str]
) -> None:
    source = tmp_path / "a.csv"
    source.write_text(to_csv([row(n) for n in range(1, 4)]))
    assert _piped(["registry", "import", str(source)], registry_env).returncode == 0
    piped = _piped(["registry", "export"], registry_env)
    assert piped.returncode == 0 and piped.stderr == ""
    assert piped.stdout.splitlines()[0].startswith("customer_id")
    assert len(piped.stdout.splitlines()) == 4
    status, out, shown = _stderr_on_a_terminal(["registry", "export"], registry_env)
    assert status == 0, shown
    assert out == piped.stdout
    assert "Exporting" in shown


def test_purge_piped_is_bare_json_and_on_a_terminal_shows_a_spinner(
    registry_env: dict[str, str],
) -> None:
    piped = _piped(["retention", "purge", "--dry-run"], registry_env)
    assert piped.returncode == 0, piped.stderr
    assert piped.stderr == ""
    assert json.loads(piped.stdout)["dry_run"] is True
    status, out, shown = _stderr_on_a_terminal(["retention", "purge", "--dry-run"], registry_env)
    assert status == 0, shown
    assert json.loads(out)["dry_run"] is True
    assert "Counting" in shown
