"""After a `pintar demo` under the usual umask, every file in its data directory is
readable by its owner only: databases with their -wal/-shm, spools, journals, the
simulated meters' state, the master key, the AP2T batch and its manifest."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import pytest

from operator_data.demo import DemoFaults, DemoOptions, run_demo

pytestmark = pytest.mark.timeout(240)


async def test_a_demo_leaves_only_owner_readable_files(tmp_path: Path) -> None:
    options = DemoOptions(
        meters=6,
        modems=1,
        duration=4,
        faults=DemoFaults.parse("none"),
        seed=5,
        data_dir=tmp_path / "demo",
        summary=tmp_path / "summary.json",
        web_port=None,
        purchase_rate=2.0,
        drain_seconds=60,
        live=False,
    )
    old = os.umask(0o022)
    try:
        await run_demo(options, out=io.StringIO())
    finally:
        os.umask(old)
    files = {
        path.relative_to(options.data_dir).as_posix(): stat.S_IMODE(path.stat().st_mode)
        for path in options.data_dir.rglob("*")
        if path.is_file()
    }
    assert "pintar.db" in files and "meters.db" in files
    assert any(name.startswith("ap2t/") for name in files)
    assert {name: mode for name, mode in files.items() if mode & 0o077} == {}
    assert stat.S_IMODE(options.data_dir.stat().st_mode) & 0o077 == 0
