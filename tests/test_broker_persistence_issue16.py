"""What rests on the broker (issue 16): the shipped Mosquitto config keeps nothing on disk.
Sends queued for an absent gateway carry receipts' STS tokens and events carry customers'
PINs; with `persistence false` (docs/bus.md) they live in the broker's memory only. Proved on
a real Mosquitto run from the shipped file's own settings, against a control run with
persistence on, which does write the queued token to disk."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiomqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

DEPLOY = Path(__file__).resolve().parent.parent / "deploy" / "mosquitto"
DOCS = Path(__file__).resolve().parent.parent / "docs" / "bus.md"
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
USERS = {"gw-a": "pw-a", "hub": "pw-hub"}
TOKEN = "56781234901287654321"
SEND = "pintar/v1/gw/gw-a/send"

pytestmark = pytest.mark.timeout(30)
needs_mosquitto = pytest.mark.skipif(
    not Path(MOSQUITTO).exists() or shutil.which("mosquitto_passwd") is None,
    reason="the mosquitto binary is not installed",
)


def _settings(text: str) -> list[tuple[str, str]]:
    pairs = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.strip().partition(" ")
            pairs.append((key, value.strip()))
    return pairs


def test_the_shipped_broker_config_keeps_nothing_on_disk() -> None:
    settings = _settings((DEPLOY / "mosquitto.conf").read_text())
    values = dict(settings)
    assert values["persistence"] == "false"
    assert "persistence_location" not in values and "autosave_interval" not in values
    # What waits in memory for an absent gateway is bounded in count and in bytes.
    assert int(values["max_queued_messages"]) > 0 and int(values["max_queued_bytes"]) > 0
    # The documented choice is this one.
    bus = DOCS.read_text()
    assert "`persistence false`" in bus and "What crosses and rests on the broker" in bus


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _config(tmp_path: Path, port: int, *, persistence: str | None) -> Path:
    """The shipped file's general settings (up to its listeners), with this machine's
    password file and the shipped ACL, on one loopback listener; `persistence` overrides
    the shipped value (the control run)."""
    passwd = tmp_path / "passwd"
    for n, (user, password) in enumerate(USERS.items()):
        create = ["-c"] if n == 0 else []
        subprocess.run(["mosquitto_passwd", *create, "-b", str(passwd), user, password], check=True)
    passwd.chmod(0o600)
    data = tmp_path / "data"
    data.mkdir()
    lines = []
    for key, value in _settings((DEPLOY / "mosquitto.conf").read_text()):
        if key == "listener":
            break  # the listeners need this deployment's certificates
        if key.startswith("log_") or key == "connection_messages":
            continue
        if key == "password_file":
            value = str(passwd)
        elif key == "acl_file":
            value = str(DEPLOY / "acl")
        elif key == "persistence" and persistence is not None:
            value = persistence
        lines.append(f"{key} {value}")
    # Where a persistent broker would write: inside tmp_path, so the scan below sees it.
    lines.append(f"persistence_location {data}/")
    lines += [f"listener {port} 127.0.0.1", "log_dest stderr", "log_type all"]
    if os.geteuid() == 0:
        lines.append("user root")  # else it switches to its own user and loses the files
    conf = tmp_path / "mosquitto.conf"
    conf.write_text("\n".join(lines) + "\n")
    return conf


@asynccontextmanager
async def _broker(conf: Path) -> AsyncIterator[None]:
    process = await asyncio.create_subprocess_exec(
        MOSQUITTO, "-c", str(conf), stderr=asyncio.subprocess.PIPE
    )
    assert process.stderr is not None
    try:
        while b" running" not in (line := await process.stderr.readline()):
            assert line, "mosquitto exited before it was running"
        drain = asyncio.create_task(process.stderr.read())
        yield
    finally:
        if process.returncode is None:
            process.terminate()  # a clean stop: a persistent broker saves its state now
            await process.wait()
    await drain


def _client(port: int, user: str, *, persistent: bool = False) -> aiomqtt.Client:
    properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    properties.SessionExpiryInterval = 3600 if persistent else 0
    return aiomqtt.Client(
        "127.0.0.1",
        port,
        username=user,
        password=USERS[user],
        identifier=f"{user}-{uuid.uuid4().hex[:6]}" if not persistent else "gw-a-session",
        protocol=aiomqtt.ProtocolVersion.V5,
        clean_start=not persistent,
        properties=properties,
    )


async def _queue_a_receipt_for_an_absent_gateway(conf: Path, port: int) -> None:
    async with _broker(conf):
        async with _client(port, "gw-a", persistent=True) as gateway:
            await gateway.subscribe(SEND, qos=1)
        # The gateway is away; its session (and its queue) stays for its expiry.
        async with _client(port, "hub") as hub:
            receipt = f'{{"v":1,"kind":"outbound","text":"Token {TOKEN}"}}'
            await hub.publish(SEND, receipt, qos=1)  # returns once the broker has it


def _files_holding_the_token(directory: Path) -> list[str]:
    return sorted(
        str(path.relative_to(directory))
        for path in directory.rglob("*")
        if path.is_file() and TOKEN.encode() in path.read_bytes()
    )


@needs_mosquitto
@pytest.mark.parametrize(
    ("persistence", "on_disk"),
    [(None, []), ("true", ["data/mosquitto.db"])],
    ids=["shipped", "control-persistence-on"],
)
async def test_a_queued_receipt_never_reaches_the_brokers_disk(
    tmp_path: Path, persistence: str | None, on_disk: list[str]
) -> None:
    port = _free_port()
    conf = _config(tmp_path, port, persistence=persistence)
    await _queue_a_receipt_for_an_absent_gateway(conf, port)
    assert _files_holding_the_token(tmp_path) == on_disk
