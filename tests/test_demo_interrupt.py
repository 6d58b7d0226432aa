"""`pintar demo` as a process: Ctrl-C ends a run as `--duration` does (drain, summary, exit
0), a second Ctrl-C cuts the drain short and the summary says so; a demo killed with
kill -9 and started again on its data directory resumes without re-issuing used tokens.

Synchronisation is on the demo's own output (its live line says what has been paid), with
a deadline; never on sleeps.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.timeout(240)

PINTAR = Path(sys.executable).parent / "pintar"
_PAID = re.compile(r"\bpaid (\d+)\b")


class Demo:
    """A running `pintar demo`, its stdout read as it comes."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[str] = []
        self._changed = asyncio.Condition()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process.stdout is not None
        while line := await self.process.stdout.readline():
            async with self._changed:
                self.lines.append(line.decode())
                self._changed.notify_all()
        async with self._changed:
            self.lines.append("")  # end of output
            self._changed.notify_all()

    async def wait_for(self, found: Callable[[str], bool], seconds: float = 120) -> str:
        """The first line (already printed or to come) for which `found` holds."""
        seen = 0
        async with asyncio.timeout(seconds), self._changed:
            while True:
                for line in self.lines[seen:]:
                    if found(line):
                        return line
                    assert line, f"the demo ended first: {''.join(self.lines)[-3000:]}"
                seen = len(self.lines)
                await self._changed.wait()

    async def wait_for_paid(self, at_least: int) -> None:
        def paid(line: str) -> bool:
            match = _PAID.search(line)
            return match is not None and int(match[1]) >= at_least

        await self.wait_for(paid)

    async def finish(self, seconds: float = 150) -> int:
        async with asyncio.timeout(seconds):
            code = await self.process.wait()
            await self._reader
        return code

    @property
    def output(self) -> str:
        return "".join(self.lines)


@asynccontextmanager
async def demo(tmp_path: Path, *args: str) -> AsyncIterator[Demo]:
    process = await asyncio.create_subprocess_exec(
        str(PINTAR),
        "demo",
        "--meters", "6",
        "--modems", "1",
        "--web-port", "0",
        "--purchase-rate", "2",
        "--seed", "5",
        "--data-dir", str(tmp_path / "demo"),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=(tmp_path / "stderr.txt").open("ab"),
        stdin=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    running = Demo(process)
    try:
        yield running
    finally:
        if process.returncode is None:
            with suppress(ProcessLookupError):
                process.kill()
            await process.wait()
        running._reader.cancel()


def _summary(path: Path) -> dict[str, Any]:
    summary: dict[str, Any] = json.loads(path.read_text())
    return summary


async def test_ctrl_c_stops_drains_and_prints_the_summary(tmp_path: Path) -> None:
    written = tmp_path / "summary.json"
    async with demo(tmp_path, "--drain", "120", "--summary", str(written)) as run:
        await run.wait_for(lambda line: "running until Ctrl-C" in line)
        await run.wait_for_paid(2)
        run.process.send_signal(signal.SIGINT)
        code = await run.finish()
    assert code == 0, (tmp_path / "stderr.txt").read_text()[-3000:]
    summary = _summary(written)
    assert summary["stopped_by"] == "interrupt"
    assert summary["drain"]["cut_short"] is False
    assert summary["purchases_paid"] >= 2
    assert summary["ap2t"]["delivered"] is True  # the helpers' servers kept running
    # The summary is printed too, after the traffic stopped and the drain said so.
    assert '"stopped_by": "interrupt"' in run.output
    assert "traffic stopped (interrupt)" in run.output


async def test_a_second_ctrl_c_cuts_the_drain_short_and_still_summarises(
    tmp_path: Path,
) -> None:
    written = tmp_path / "summary.json"
    # Every meter offline for its first 30 s: paid purchases stay unsettled, so the drain
    # has work to wait for when the second Ctrl-C comes.
    async with demo(
        tmp_path, "--drain", "200", "--faults", "meter_offline=1", "--summary", str(written)
    ) as run:
        await run.wait_for_paid(1)
        run.process.send_signal(signal.SIGINT)
        await run.wait_for(lambda line: "traffic stopped" in line)
        run.process.send_signal(signal.SIGINT)
        code = await run.finish()
    assert code == 0, (tmp_path / "stderr.txt").read_text()[-3000:]
    summary = _summary(written)
    assert summary["drain"] | {"seconds": 0} == {
        "settled": False,
        "cut_short": True,
        "seconds": 0,
        "limit_s": 200.0,
    }
    assert summary["purchases_paid"] >= 1 and "lost" in summary
    assert "drain cut short" in run.output


async def test_a_demo_killed_and_restarted_on_its_data_dir_reuses_no_token(
    tmp_path: Path,
) -> None:
    async with demo(tmp_path) as run:
        # Several tokens per meter within a minute: the simulator stamps each with a later
        # minute, ahead of the clock, which a restart without its books re-issued.
        await run.wait_for_paid(12)
        run.process.send_signal(signal.SIGKILL)
        await run.finish()
    written = tmp_path / "summary.json"
    async with demo(
        tmp_path, "--duration", "6", "--drain", "150", "--summary", str(written)
    ) as run:
        await run.wait_for(lambda line: line.startswith("[") and "resuming" in line)
        code = await run.finish(200)
    assert code == 0, (tmp_path / "stderr.txt").read_text()[-3000:]
    summary = _summary(written)
    assert summary["resumed"]["runs_before"] == 1
    assert summary["resumed"]["paid_before"] >= 12
    assert summary["purchases_paid"] > summary["resumed"]["paid_before"], summary
    # No purchase, of either run, ended with the meter refusing its token (USED/OLD).
    assert [item for item in summary["lost"] if item["hub_state"] == "meter_rejected"] == []
    assert summary["customer_ledger"]["rejected"] == []
    assert summary["duplicates"]["total"] == 0
    assert summary["silent_losses"] == 0


async def test_a_data_dir_whose_simulator_books_are_gone_is_refused(tmp_path: Path) -> None:
    async with demo(tmp_path, "--duration", "2", "--drain", "60") as run:
        assert await run.finish() == 0
    for books in (tmp_path / "demo").glob("p2apst-sim.db*"):
        books.unlink()  # as a data directory of the demo before its books were kept
    async with demo(tmp_path, "--duration", "2") as run:
        code = await run.finish()
    assert code == 2
    error = (tmp_path / "stderr.txt").read_text()
    assert "p2apst-sim.db" in error and "use a new --data-dir" in error
    assert not (tmp_path / "demo" / "p2apst-sim.db").exists()
