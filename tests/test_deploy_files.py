"""deploy/: compose structure, systemd units, and the Mosquitto ACL on a real broker."""

from __future__ import annotations

import asyncio
import configparser
import os
import re
import shutil
import socket
import subprocess
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
import yaml  # type: ignore[import-untyped]

from gateway.mqtt import GatewayBridge, MqttSettings, MqttTransport
from gateway.spool import Spool
from gateway.spooled import SpooledGateway
from gateway.transport import OutboundSms, SendResult
from tests.gateway.loopback import LoopbackCarrier

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
SECRET_WORDS = re.compile(r"password|secret|master_key|token", re.IGNORECASE)


# -- docker-compose.yml ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    assert isinstance(document, dict)
    return document


def test_compose_has_every_service_with_a_healthcheck(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in ("mosquitto", "postgres", "hub-1", "hub-2", "gateway-1", "gateway-2"):
        assert name in services, name
        assert "healthcheck" in services[name], name
        assert services[name]["healthcheck"]["test"], name
    assert services["hub-1"]["command"][:1] == ["hub"]
    assert services["gateway-2"]["command"][:1] == ["gateway"]
    assert services["migrate"]["command"][:2] == ["db", "upgrade"]


def test_compose_services_wait_for_healthy_dependencies(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in ("hub-1", "hub-2"):
        assert services[name]["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert services[name]["depends_on"]["mosquitto"]["condition"] == "service_healthy"
    for name in ("gateway-1", "gateway-2"):
        assert services[name]["depends_on"]["mosquitto"]["condition"] == "service_healthy"


def test_compose_state_lives_in_named_volumes(compose: dict[str, Any]) -> None:
    services, volumes = compose["services"], compose["volumes"]
    for name, path in [
        ("postgres", "/var/lib/postgresql/data"),
        ("mosquitto", "/mosquitto/data"),
        ("gateway-1", "/var/lib/pintar"),
        ("gateway-2", "/var/lib/pintar"),
    ]:
        mounts = [m.split(":") for m in services[name]["volumes"]]
        named = [source for source, target, *_ in mounts if target == path]
        assert named and named[0] in volumes, (name, path)
    # two gateways never share a spool
    assert services["gateway-1"]["volumes"] != services["gateway-2"]["volumes"]


def test_compose_takes_secrets_from_env_files_only(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for key, value in (service.get("environment") or {}).items():
            assert not SECRET_WORDS.search(key), f"{name}: secret {key} written inline"
            assert not SECRET_WORDS.search(str(value)), f"{name}: {key}"
        for env_file in service.get("env_file", []):
            example = DEPLOY / (env_file + ".example")
            assert example.is_file(), f"{name}: {env_file} has no .example"
    for name in ("hub-1", "hub-2", "gateway-1", "gateway-2", "postgres"):
        assert compose["services"][name]["env_file"], name
    for example in (DEPLOY / "env").glob("*.example"):
        for line in example.read_text().splitlines():
            if "=" in line and not line.startswith("#") and SECRET_WORDS.search(line):
                assert "CHANGE-ME" in line, f"{example.name}: {line}"


def test_gitignore_keeps_filled_in_secrets_out() -> None:
    ignored = (DEPLOY / ".gitignore").read_text().split()
    assert "env/*.env" in ignored and "secrets/" in ignored


# -- systemd units ---------------------------------------------------------------------------


def _unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string((DEPLOY / "systemd" / name).read_text())
    return parser


@pytest.mark.parametrize(
    ("unit", "command"),
    [
        ("pintar-hub@.service", "pintar hub --config /etc/pintar/hub.toml"),
        ("pintar-gateway@.service", "pintar gateway --config /etc/pintar/gateway-%i.toml"),
        ("pintar-p2apst-sim.service", "pintar p2apst-sim"),
    ],
)
def test_systemd_units_are_hardened(unit: str, command: str) -> None:
    service = _unit(unit)["Service"]
    assert command in service["ExecStart"]
    assert service["ProtectSystem"] == "strict"
    assert service["Restart"] == "on-failure"
    assert service["NoNewPrivileges"] == "yes"
    assert service.get("StateDirectory")
    assert "EnvironmentFile" in service
    assert service.get("DynamicUser") == "yes" or service.get("User") == "pintar"


def test_the_gateway_unit_validates_its_config_before_starting() -> None:
    service = _unit("pintar-gateway@.service")["Service"]
    assert "gateway --check" in service["ExecStartPre"]
    assert service["SupplementaryGroups"] == "dialout"


# -- Mosquitto: TLS config and the ACL on a real broker -------------------------------------


def test_mosquitto_config_has_a_tls_listener() -> None:
    lines = [
        line.split(None, 1)
        for line in (DEPLOY / "mosquitto" / "mosquitto.conf").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    settings = [(key, value.strip()) for key, value in lines]
    assert ("listener", "8883") in settings
    tls = dict(settings[settings.index(("listener", "8883")) :])
    assert {"cafile", "certfile", "keyfile"} <= tls.keys()
    assert ("allow_anonymous", "false") in settings
    assert any(key == "acl_file" for key, _ in settings)


MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
USERS = {"gw-a": "pw-a", "gw-b": "pw-b", "hub": "pw-hub"}
pytest_mosquitto = pytest.mark.skipif(
    not Path(MOSQUITTO).exists() or shutil.which("mosquitto_passwd") is None,
    reason="the mosquitto binary is not installed",
)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    passwd = tmp_path / "passwd"
    for n, (user, password) in enumerate(USERS.items()):
        create = ["-c"] if n == 0 else []
        subprocess.run(["mosquitto_passwd", *create, "-b", str(passwd), user, password], check=True)
    passwd.chmod(0o600)
    return passwd


@pytest.fixture
async def broker(tmp_path: Path, password_file: Path) -> AsyncIterator[int]:
    """A private Mosquitto with deploy/mosquitto/acl and a password per user (no TLS)."""
    passwd = password_file
    port = _free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\n"
        "allow_anonymous false\n"
        f"password_file {passwd}\n"
        f"acl_file {DEPLOY / 'mosquitto' / 'acl'}\n"
        "persistence false\n"
        "log_dest stderr\nlog_type all\n" + ("user root\n" if os.geteuid() == 0 else "")
        # started as root, mosquitto would switch to its own user and lose the files
    )
    process = await asyncio.create_subprocess_exec(
        MOSQUITTO, "-c", str(conf), stderr=asyncio.subprocess.PIPE
    )
    try:
        assert process.stderr is not None
        while b" running" not in (line := await process.stderr.readline()):
            assert line, "mosquitto exited before it was running"
        drain = asyncio.create_task(process.stderr.read())  # keep its pipe from filling
        yield port
        drain.cancel()
    finally:
        process.terminate()
        await process.wait()


def _client(port: int, user: str, password: str | None = None) -> aiomqtt.Client:
    return aiomqtt.Client(
        "127.0.0.1",
        port,
        username=user,
        password=USERS.get(user) if password is None else password,
        identifier=f"{user}-{uuid.uuid4().hex[:6]}",
        protocol=aiomqtt.ProtocolVersion.V5,
    )


async def _first(client: aiomqtt.Client) -> aiomqtt.Message:
    async for message in client.messages:
        return message
    raise AssertionError("no message")


GW = "pintar/v1/gw"


@pytest_mosquitto
@pytest.mark.timeout(20)
async def test_a_gateway_cannot_read_another_gateways_sends(broker: int) -> None:
    async with (
        _client(broker, "gw-a") as gw_a,
        _client(broker, "gw-b") as gw_b,
        _client(broker, "hub") as hub,
    ):
        await gw_a.subscribe(f"{GW}/gw-b/send", qos=1)  # refused or never delivered
        await gw_a.subscribe(f"{GW}/gw-a/send", qos=1)
        await gw_b.subscribe(f"{GW}/gw-b/send", qos=1)
        await hub.publish(f"{GW}/gw-b/send", b"for gw-b only", qos=1)
        await hub.publish(f"{GW}/gw-a/send", b"for gw-a", qos=1)
        # The broker delivers one publisher's messages in order: had gw-a been allowed to
        # read gw-b's topic, "for gw-b only" would come first.
        first_a = await _first(gw_a)
        assert (first_a.topic.value, first_a.payload) == (f"{GW}/gw-a/send", b"for gw-a")
        first_b = await _first(gw_b)
        assert first_b.payload == b"for gw-b only"


@pytest_mosquitto
@pytest.mark.timeout(20)
async def test_a_gateway_cannot_publish_as_another_gateway(broker: int) -> None:
    async with _client(broker, "hub") as hub, _client(broker, "gw-a") as gw_a:
        await hub.subscribe(f"$share/hub/{GW}/+/events", qos=1)
        await gw_a.publish(f"{GW}/gw-b/events", b"forged", qos=1)
        await gw_a.publish(f"{GW}/gw-b/status", b"online", qos=1, retain=True)
        await gw_a.publish(f"{GW}/gw-a/events", b"genuine", qos=1)
        message = await _first(hub)
        assert (message.topic.value, message.payload) == (f"{GW}/gw-a/events", b"genuine")
    async with _client(broker, "hub") as hub:
        await hub.subscribe(f"{GW}/+/status", qos=1)
        await hub.subscribe(f"{GW}/gw-a/events", qos=1)
        async with _client(broker, "gw-a") as gw_a:
            await gw_a.publish(f"{GW}/gw-a/events", b"after", qos=1)
        message = await _first(hub)  # no retained forged status came first
        assert message.payload == b"after"


@pytest_mosquitto
@pytest.mark.timeout(20)
async def test_the_hub_cannot_forge_gateway_events(broker: int) -> None:
    async with _client(broker, "hub") as hub, _client(broker, "hub") as worker:
        await worker.subscribe(f"{GW}/+/events", qos=1)
        await hub.publish(f"{GW}/gw-a/events", b"forged by hub", qos=1)
        async with _client(broker, "gw-a") as gw_a:
            await gw_a.publish(f"{GW}/gw-a/events", b"genuine", qos=1)
        message = await _first(worker)
        assert message.payload == b"genuine"


@pytest_mosquitto
@pytest.mark.timeout(20)
@pytest.mark.parametrize(("user", "password"), [("gw-a", "wrong"), ("nobody", "x")])
async def test_unknown_users_and_wrong_passwords_are_refused(
    broker: int, user: str, password: str
) -> None:
    with pytest.raises(aiomqtt.MqttError):
        async with _client(broker, user, password):
            pass


@asynccontextmanager
async def _node(settings: MqttSettings, spool: Path) -> AsyncIterator[LoopbackCarrier]:
    carrier = LoopbackCarrier()
    async with AsyncExitStack() as stack:
        store = await stack.enter_async_context(Spool(spool))
        gateway = await stack.enter_async_context(SpooledGateway("gw-a", carrier, store))
        bridge = await stack.enter_async_context(GatewayBridge("gw-a", gateway, settings))
        await bridge.connected.wait()
        yield carrier


@pytest_mosquitto
@pytest.mark.timeout(20)
async def test_the_real_bridge_and_hub_transport_work_under_the_acl(
    broker: int, tmp_path: Path
) -> None:
    gateway_side = MqttSettings(port=broker, username="gw-a", password=USERS["gw-a"])
    hub_side = MqttSettings(port=broker, username="hub", password=USERS["hub"])
    async with MqttTransport(hub_side) as hub, _node(gateway_side, tmp_path / "s.db") as carrier:
        await hub.wait_for_gateway("gw-a")  # the retained status passed the ACL
        assert await hub.send(OutboundSms("msg-1", "+6281100000001", text="token"))
        result = await anext(hub.events())
        assert isinstance(result, SendResult) and result.message_id == "msg-1"
        assert result.gateway == "gw-a"
        assert [sms.message_id for sms in carrier.submitted] == ["msg-1"]


def test_the_image_holds_every_package_and_runs_unprivileged() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    pyproject = (DEPLOY.parent / "pyproject.toml").read_text()
    include = re.search(r"include = \[(.*?)\]", pyproject)
    assert include is not None
    packages = re.findall(r'"(\w+)\*"', include.group(1))
    assert packages
    for package in packages:
        assert f"COPY {package} ./{package}" in dockerfile, package
    assert re.search(r"^USER pintar$", dockerfile, re.MULTILINE)
    assert 'ENTRYPOINT ["pintar"]' in dockerfile
