"""`pintar --help` and the codec commands import no web stack, database or MQTT module.

Each case runs the real CLI in a fresh interpreter and reads `sys.modules` as the process
ends: the import set is what makes the CLI slow or fast, and unlike a time it does not
depend on the machine (issue 18 item 4)."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from operator_data.cli.main import COMMANDS
from tests.p2apst_adapter import samples

# Top-level packages only a service command may need.
HEAVY = (
    "fastapi",
    "starlette",
    "uvicorn",
    "sqlalchemy",
    "alembic",
    "asyncpg",
    "aiosqlite",
    "aiomqtt",
    "paho",
    "pydantic_settings",
)
# Our own modules that pull those in.
HEAVY_OURS = ("operator_data.store", "operator_data.api", "operator_data.settings")

# Sets sys.argv, runs the console entry point, and on exit writes the module names to the
# file named by the first argument.
PROBE = """
import atexit, json, sys
out = sys.argv[1]
atexit.register(lambda: open(out, "w").write(json.dumps(sorted(sys.modules))))
sys.argv = ["pintar", *sys.argv[2:]]
from operator_data.cli.main import main
main()
"""

FRAME_KEY = "000102030405060708090a0b0c0d0e0f"
FRAME_METER = "14234567890"
TOKEN = '{"reference": 31337, "token": "26456622012185850752"}'

CASES: dict[str, list[str]] = {
    "help": ["--help"],
    "no-arguments": [],
    "sts-help": ["sts", "--help"],
    "sts-decode": shlex.split("sts decode --decoder-key e653341f9d5bf36f 26456622012185850752"),
    "sts-derive-key": shlex.split(
        "sts derive-key --vending-key abababababababab --key-type 2 --sgc 123456"
        " --tariff-index 01 --krn 1 --iin 600727 --drn 00000000000"
    ),
    "pdu-decode": [
        "pdu",
        "decode",
        "06917228195339040B917228214365F700003130805120618005D4F29C2E03",
    ],
    "pdu-encode": shlex.split("pdu encode --to +6281234567890 --text halo"),
    "frame-encode": [
        *shlex.split(f"frame encode --key {FRAME_KEY} --meter {FRAME_METER} --counter 5"),
        *shlex.split("--message-id 7 --text TOKEN_DELIVERY"),
        TOKEN,
    ],
    "iso8583-decode": ["iso8583", "decode", "--raw", samples.PURCHASE_REQUEST],
}


def _modules_after(
    args: list[str], tmp_path: Path
) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    out = tmp_path / "modules.json"
    env = {**os.environ, "COLUMNS": "100"}
    env.pop("PINTAR_CONFIG", None)
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(out), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    return done, set(json.loads(out.read_text()))


def _heavy(modules: set[str]) -> list[str]:
    found = [name for name in modules if name.partition(".")[0] in HEAVY]
    found += [name for name in modules if name.startswith(HEAVY_OURS)]
    return sorted(found)


@pytest.mark.parametrize("case", sorted(CASES))
def test_light_commands_import_nothing_heavy(case: str, tmp_path: Path) -> None:
    done, modules = _modules_after(CASES[case], tmp_path)
    # It really ran: help lists the commands, a codec command printed its JSON.
    if case in ("help", "no-arguments"):
        assert all(name in done.stdout for name in COMMANDS), done.stderr
    elif case.endswith("-help"):
        assert done.returncode == 0 and "Usage" in done.stdout, done.stderr
    else:
        assert done.returncode == 0, done.stderr
        assert isinstance(json.loads(done.stdout), dict)
    if case == "help":
        # Drawn by root_help, not by Typer's rich help (Markdown, syntax highlighting).
        assert done.returncode == 0
        assert "typer.rich_utils" not in modules and "markdown_it" not in modules
    assert _heavy(modules) == []


def test_only_the_command_run_is_imported(tmp_path: Path) -> None:
    _, modules = _modules_after(["sts", "--help"], tmp_path)
    loaded = {name for name in modules if re.fullmatch(r"operator_data\.cli\.\w+_cmd", name)}
    assert loaded == {"operator_data.cli.sts_cmd"}


def test_a_service_command_still_gets_what_it_needs(tmp_path: Path) -> None:
    """The probe sees heavy modules when they are needed: the test above is not blind."""
    done, modules = _modules_after(["db", "--help"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "sqlalchemy" in modules and "operator_data.store" in modules


def _first_paragraph(text: str | None) -> str:
    return " ".join((text or "").split("\n\n")[0].split())


@pytest.mark.parametrize("name", list(COMMANDS))
def test_root_help_says_what_each_command_says_of_itself(name: str) -> None:
    """The one-liners of `pintar --help` are kept next to the lazy table; they must not
    drift from the commands' own help."""
    spec = COMMANDS[name]
    assert _first_paragraph(spec.load(name).help) == _first_paragraph(spec.help)
