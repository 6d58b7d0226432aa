"""Coverage-guided fuzzing (atheris) of every decoder of outside bytes, bounded by a count
of executions per target, plus a replay of every kept input (seeds and each crash ever
found, tests/fuzz/corpus/TARGET/) so a fixed crash stays fixed without atheris too."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fuzz.run import CORPUS, INSTRUMENT
from tests.fuzz.targets import TARGETS

pytestmark = pytest.mark.timeout(120)

# Each target runs this many inputs: about a second apiece here, so CI pays < 10 s.
RUNS = 30_000
ROOT = Path(__file__).resolve().parents[2]


def test_every_target_has_instrumentation_and_seeds() -> None:
    assert set(INSTRUMENT) == set(TARGETS)
    for name in TARGETS:
        assert any((CORPUS / name).iterdir()), f"no seeds for {name}"


@pytest.mark.parametrize(
    ("name", "case"),
    [(name, path) for name in TARGETS for path in sorted((CORPUS / name).iterdir())],
    ids=lambda value: value.name if isinstance(value, Path) else value,
)
def test_kept_input_decodes_or_is_refused_cleanly(name: str, case: Path) -> None:
    TARGETS[name](case.read_bytes())


def _need_atheris() -> None:
    if importlib.util.find_spec("atheris") is not None:
        return
    message = "atheris is not installed (pip install -e '.[dev]'; it needs a wheel or clang)"
    if os.environ.get("PINTAR_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{message} and PINTAR_REQUIRE_SERVICES=1")
    pytest.skip(message)


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_fuzzer_finds_no_crash(name: str, tmp_path: Path) -> None:
    _need_atheris()
    result = subprocess.run(
        [sys.executable, "-m", "tests.fuzz.run", name, str(RUNS), str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    crashes = sorted(tmp_path.glob("crash-*"))
    # A crash is kept for good: copy it into tests/fuzz/corpus/NAME/ (it then replays
    # in test_kept_input_decodes_or_is_refused_cleanly) and fix the decoder.
    assert result.returncode == 0 and not crashes, (
        f"{name}: fuzzer exit {result.returncode}; crashing inputs "
        f"{[(path.name, path.read_bytes()[:200]) for path in crashes]}\n{result.stderr[-3000:]}"
    )
    assert f"Done {RUNS} runs" in result.stderr
