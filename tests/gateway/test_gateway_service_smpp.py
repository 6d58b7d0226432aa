"""A gateway node in SMPP mode (in process): hub → MQTT → node → SMSC simulator, and back."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from gateway.config import GatewayConfig, load_gateway_config
from gateway.mqtt import MqttSettings, MqttTransport, Topics
from gateway.service import running_gateway
from gateway.smpp import SmscSimulator
from gateway.transport import DeliveryReport, InboundSms, OutboundSms, SendResult, TransportEvent

pytestmark = [pytest.mark.services, pytest.mark.timeout(20)]
METER = "+6281100000001"


def config(tmp_path: Path, smsc: SmscSimulator, root: str) -> GatewayConfig:
    secret = tmp_path / "smpp-password"
    secret.write_text("secret\n")
    secret.chmod(0o600)
    path = tmp_path / "gw.toml"
    path.write_text(
        f'name = "gw-smpp"\nspool_path = "{tmp_path / "spool.db"}"\ncarrier = "smpp"\n'
        f'[mqtt]\ntopic_root = "{root}"\n'
        f'[smpp]\nhost = "127.0.0.1"\nport = {smsc.port}\nsystem_id = "pintar"\n'
        f'password_file = "{secret}"\nreconnect_backoff_max = 0.1\n'
    )
    return load_gateway_config(path)


async def test_an_smpp_gateway_node_sends_receives_and_reports(
    mosquitto_url: str, tmp_path: Path
) -> None:
    root = f"pintar-test-{uuid.uuid4().hex[:10]}/v1"
    async with (
        SmscSimulator() as smsc,
        MqttTransport(MqttSettings(topics=Topics(root=root))) as hub,
    ):
        settings = config(tmp_path, smsc, root)
        async with running_gateway(settings) as node:
            assert settings.receipts_path.exists()
            await hub.wait_for_gateway("gw-smpp")
            assert await hub.send(OutboundSms("msg-1", METER, text="Token 1234"))
            await smsc.inject_mo(METER, b"SALDO")
            stream = hub.events()
            seen: list[TransportEvent] = []
            while not (
                any(isinstance(e, DeliveryReport) for e in seen)
                and any(isinstance(e, InboundSms) for e in seen)
            ):
                seen.append(await anext(stream))
            result = next(e for e in seen if isinstance(e, SendResult))
            report = next(e for e in seen if isinstance(e, DeliveryReport))
            inbound = next(e for e in seen if isinstance(e, InboundSms))
            assert (result.message_id, result.gateway) == ("msg-1", "gw-smpp")
            assert report.message_id == "msg-1" and report.delivered
            assert (inbound.sender, inbound.text, inbound.gateway) == (METER, "SALDO", "gw-smpp")
            assert node.config.name == "gw-smpp"
        assert [s.short_message for s in smsc.submitted] == [b"Token 1234"]
