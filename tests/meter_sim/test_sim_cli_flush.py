"""`pintar sim network` with its stdout a pipe (as a script or `| tee` reads it): each
`MSISDN /dev/pts/N` line must arrive at once, not when Python's block buffer fills."""

from __future__ import annotations

import asyncio
import os
import sys

import pytest

pytestmark = pytest.mark.timeout(60)


async def test_first_line_arrives_through_a_pipe_without_unbuffered_mode() -> None:
    # PYTHONUNBUFFERED would hide a missing flush, so the child runs without it.
    env = {key: value for key, value in os.environ.items() if key != "PYTHONUNBUFFERED"}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from operator_data.cli.main import main; main()",
        "sim",
        "network",
        "--modems",
        "1",
        stdout=asyncio.subprocess.PIPE,
        env=env,
    )
    try:
        assert process.stdout is not None
        # The process stays alive after printing: a block-buffered line would never come,
        # so the deadline is the failure, not a timing measurement.
        line = await asyncio.wait_for(process.stdout.readline(), timeout=30)
        msisdn, device = line.decode().split()
        assert msisdn == "+6281200000001"
        assert device.startswith("/dev/pts/")
        assert process.returncode is None
    finally:
        process.terminate()
        await process.wait()
