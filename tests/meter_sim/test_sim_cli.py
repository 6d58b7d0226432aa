"""`pintar sim network` as a separate process, spoken to through its pty."""

from __future__ import annotations

import asyncio
import sys

import pytest

from gateway import pdu
from tests.meter_sim.at_client import SerialAt

pytestmark = pytest.mark.timeout(30)


async def test_network_process_prints_modems_and_serves_at() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from operator_data.cli.main import main; main()",
        "sim",
        "network",
        "--modems",
        "2",
        "--echo",
        "+6281299999999",
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        lines = [(await process.stdout.readline()).decode().split() for _ in range(2)]
        assert [line[0] for line in lines] == ["+6281200000001", "+6281200000002"]
        assert all(line[1].startswith("/dev/pts/") for line in lines)
        client = await asyncio.to_thread(SerialAt, lines[0][1])
        try:
            assert (await asyncio.to_thread(client.command, "ATE0;+CNMI=2,1,0,0,0")).endswith(
                "OK\r\n"
            )
            [part] = pdu.encode_submit("+6281299999999", text="halo")
            answer = await asyncio.to_thread(client.send_pdu, part.tpdu_length, part.hex)
            assert "+CMGS: " in answer
            await asyncio.to_thread(client.read_until, b'+CMTI: "SM",1\r\n')
        finally:
            client.close()
    finally:
        process.terminate()
        await process.wait()


async def test_bad_profile_exits_2() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from operator_data.cli.main import main; main()",
        "sim",
        "network",
        "--profile",
        "slow",
        stderr=asyncio.subprocess.PIPE,
    )
    _, error = await process.communicate()
    assert process.returncode == 2
    assert b"slow" in error
