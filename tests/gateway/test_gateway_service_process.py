"""`pintar gateway` as a real process: emulated modems on ptys, the local Mosquitto, and a
hub-side MqttTransport in the test. SIGKILL mid-traffic, restart: nothing accepted is lost
and unacknowledged events come again."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from gateway.mqtt import MqttSettings, MqttTransport, Topics
from gateway.transport import InboundSms, OutboundSms, SendResult, SendStatus, TransportEvent
from meter_sim.network import NetworkSms, NetworkStatusReport, SmsNetwork
from meter_sim.network.run import running_network

pytestmark = [pytest.mark.services, pytest.mark.timeout(30)]
ECHO = "+6281399999999"
PINTAR = Path(sys.executable).with_name("pintar")


def fresh_names() -> tuple[str, str, MqttSettings]:
    """A gateway name and a topic root of this test's own, and the hub's settings for it."""
    root = f"pintar-test-{uuid.uuid4().hex[:10]}/v1"
    return f"gw-{uuid.uuid4().hex[:8]}", root, MqttSettings(topics=Topics(root=root))


def write_config(tmp_path: Path, name: str, root: str, ports: list[str]) -> Path:
    modems = "".join(
        f'[[modems]]\nport = "{port}"\nname = "m{n}"\n' for n, port in enumerate(ports)
    )
    path = tmp_path / "gateway.toml"
    path.write_text(
        f'name = "{name}"\n'
        f'spool_path = "{tmp_path / "spool.db"}"\n'
        'carrier = "modems"\n'
        "[mqtt]\n"
        'host = "127.0.0.1"\nport = 1883\n'
        f'topic_root = "{root}"\n'
        "redeliver_after = 30.0\nmax_backoff = 1.0\n"
        "[pool]\nmin_interval = 0.0\nretry_delay = 0.5\n" + modems
    )
    return path


@asynccontextmanager
async def gateway_process(config: Path) -> AsyncIterator[asyncio.subprocess.Process]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PINTAR_GATEWAY_")}
    process = await asyncio.create_subprocess_exec(
        str(PINTAR),
        "gateway",
        "--config",
        str(config),
        stdout=asyncio.subprocess.PIPE,
        env=environment,
    )
    try:
        assert process.stdout is not None
        line = await process.stdout.readline()
        assert b'"status": "connected"' in line, line
        yield process
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()


async def collect(
    stream: AsyncIterator[TransportEvent], seen: list[TransportEvent], done: object
) -> None:
    assert callable(done)
    while not done():
        seen.append(await anext(stream))


def results(seen: list[TransportEvent]) -> dict[str, SendResult]:
    return {e.message_id: e for e in seen if isinstance(e, SendResult)}


# A SIGKILL between a send's outcome and its event once lost the SendResult for good;
# the spool now writes both in one transaction (Spool.record_outcome).
async def test_gateway_process_survives_sigkill_without_losing_anything(
    mosquitto_url: str, tmp_path: Path
) -> None:
    name, root, settings = fresh_names()
    async with (
        running_network(1, echo=ECHO) as network,
        MqttTransport(settings) as hub,
    ):
        config = write_config(tmp_path, name, root, [m.device_path for m in network.modems])
        stream = hub.events()
        seen: list[TransportEvent] = []
        ids = [f"msg-{n}" for n in range(6)]

        async with gateway_process(config) as first:
            await hub.wait_for_gateway(name)
            for message_id in ids[:3]:
                assert await hub.send(OutboundSms(message_id, ECHO, text=f"halo {message_id}"))
            await collect(stream, seen, lambda: bool(results(seen)))
            first.send_signal(signal.SIGKILL)  # mid-traffic: the rest is in flight
            await first.wait()
        before_kill, cut = {e.event_id for e in seen}, len(seen)

        async with gateway_process(config):
            await hub.wait_for_gateway(name)
            for message_id in ids[3:]:
                assert await hub.send(OutboundSms(message_id, ECHO, text=f"halo {message_id}"))
            # Acting as the hub's outbox: whatever has no result yet is offered again (the
            # gateway's spool takes a message_id once; an SMS a kill caught between MQTT and
            # the spool is only covered this way).
            for message_id in ids[:3]:
                if message_id not in results(seen):
                    await hub.send(OutboundSms(message_id, ECHO, text=f"halo {message_id}"))

            def complete() -> bool:
                echoed = {e.text for e in seen if isinstance(e, InboundSms) and e.sender == ECHO}
                redelivered = before_kill <= {e.event_id for e in seen[cut:]}
                return (
                    set(results(seen)) == set(ids)
                    and echoed >= {f"halo {i}" for i in ids}
                    and redelivered
                )

            await collect(stream, seen, complete)
        assert all(
            r.status is SendStatus.SENT and r.gateway == name for r in results(seen).values()
        )
        assert network.echo is not None
        assert {sms.text for sms in network.echo.received} >= {f"halo {i}" for i in ids}


class Arrivals:
    """A phone on the network that queues what reaches it (the test waits on the queue)."""

    def __init__(self, network: SmsNetwork, msisdn: str) -> None:
        self.queue: asyncio.Queue[str | None] = asyncio.Queue()
        network.attach(msisdn, self)

    async def receive_sms(self, sms: NetworkSms) -> bool:
        self.queue.put_nowait(sms.text)
        return True

    async def receive_status_report(self, report: NetworkStatusReport) -> None:
        return None


# Store-then-send: the modem sends and dies before it answers; the gateway is SIGKILLed while
# it waits. Before, the restarted gateway sent the SMS again (its spool said "sending").
async def test_a_gateway_killed_while_its_modem_sends_sends_the_sms_once(
    mosquitto_url: str, tmp_path: Path
) -> None:
    name, root, settings = fresh_names()
    phone = "+6281377777777"
    async with (
        running_network(1) as network,
        MqttTransport(settings) as hub,
    ):
        arrivals = Arrivals(network.network, phone)
        (modem,) = network.modems
        config = write_config(tmp_path, name, root, [modem.device_path])
        stream = hub.events()
        seen: list[TransportEvent] = []
        async with gateway_process(config) as first:
            await hub.wait_for_gateway(name)
            modem.faults.hang_after_next_send = True
            assert await hub.send(OutboundSms("msg-0", phone, text="receipt 0"))
            assert await arrivals.queue.get() == "receipt 0"  # out, and the modem is silent
            first.send_signal(signal.SIGKILL)
            await first.wait()
        modem.reset()  # power-cycled: its SIM still holds the message, marked sent

        async with gateway_process(config):
            await hub.wait_for_gateway(name)
            await collect(stream, seen, lambda: "msg-0" in results(seen))
            assert results(seen)["msg-0"].status is SendStatus.SENT
            assert await hub.send(OutboundSms("msg-1", phone, text="receipt 1"))
            # One modem sends in order: a second copy of receipt 0 would come first.
            assert await arrivals.queue.get() == "receipt 1"
            await collect(stream, seen, lambda: "msg-1" in results(seen))
        assert arrivals.queue.empty()
