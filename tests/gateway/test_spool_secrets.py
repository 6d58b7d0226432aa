"""The gateway's durable files keep no SMS text once the hub is done with it (issue 16):
an acked event and a final outbound SMS leave no PIN, token or PDU in the spool's bytes
(file, -wal, -shm) after a purge round, the inbound journal's likewise, and every one of
these files is private to the service's user (0600)."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.at.events import InboundSms as TakenPdu
from gateway.housekeeping import Housekeeper
from gateway.inbound_journal import InboundJournal
from gateway.pdu import decode, encode_deliver
from gateway.spool import OutboundState, Spool
from gateway.transport import InboundSms, OutboundSms, SendResult, SendStatus

NOW = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
CUSTOMER = "+6281234567890"
PIN = "917354"
TOKEN = "73619480215573920461"
COMMAND = f"BELI 100rb {PIN}"
RECEIPT = f"Token listrik Anda: {TOKEN[:4]} {TOKEN[4:8]} {TOKEN[8:12]} {TOKEN[12:16]} {TOKEN[16:]}"


def _files(path: Path) -> list[Path]:
    return [p for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists()]


def _holds(path: Path, *needles: str) -> list[str]:
    """The needles found in the raw bytes of the file or its -wal/-shm."""
    found = []
    for file in _files(path):
        data = file.read_bytes()
        found += [f"{n} in {file.name}" for n in needles if n.encode() in data]
    return found


def _command_event(pdu: str) -> InboundSms:
    return InboundSms(
        event_id="sms:1",
        sender=CUSTOMER,
        received_at=NOW,
        text=COMMAND,
        modem="m1",
        raw_pdus=(pdu,),
    )


async def test_an_acked_command_leaves_no_pin_or_pdu_in_the_spool_files(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    pdu = encode_deliver(CUSTOMER, text=COMMAND, timestamp=NOW)
    async with Spool(path) as spool:
        await spool.record_event(_command_event(pdu), NOW)
        assert _holds(path, PIN, pdu)  # the spool holds it until the hub acks it
        await spool.ack("sms:1")
        await spool.purge(NOW - timedelta(hours=72))  # the housekeeping round
        assert _holds(path, COMMAND, PIN, pdu) == []
    assert _holds(path, COMMAND, PIN, pdu) == []


async def test_a_final_outbound_sms_loses_its_text_in_the_statement_that_makes_it_final(
    tmp_path: Path,
) -> None:
    path = tmp_path / "spool.db"
    receipt = OutboundSms("msg-1", CUSTOMER, text=RECEIPT)
    failed = OutboundSms("msg-2", CUSTOMER, text=f"Token {TOKEN[::-1]}")
    frame = OutboundSms("msg-3", "+6281100000001", data=bytes.fromhex("a1b2c3d4e5f60718"))
    waiting = OutboundSms("msg-4", CUSTOMER, text="Sisa kredit 12 kWh")
    async with Spool(path) as spool:
        for sms in (receipt, failed, frame, waiting):
            await spool.accept(sms, NOW, sending=sms is not waiting)
        result = SendResult("sr-1", "msg-1", SendStatus.SENT, NOW, (7,), CUSTOMER, "gw", "m1")
        await spool.record_outcome(
            result,
            "msg-1",
            OutboundState.SENT,
            NOW,
            modem="m1",
            references=(7,),
            recipient=CUSTOMER,
        )
        await spool.mark("msg-2", OutboundState.FAILED, NOW, error="rejected")
        await spool.mark("msg-3", OutboundState.SENT, NOW)
        sent = await spool.outbound_state("msg-1")
        assert sent is not None and sent.state is OutboundState.SENT
        assert sent.sms.text == "" and sent.sms.to == CUSTOMER  # the row, without its text
        gone = await spool.outbound_state("msg-2")
        assert gone is not None and gone.sms.text == "" and gone.state is OutboundState.FAILED
        data = await spool.outbound_state("msg-3")
        assert data is not None and data.sms.data == b"" and data.sms.text is None
        # not final: kept whole, it is still to be sent
        assert [p.sms for p in await spool.pending()] == [waiting]
        assert not await spool.accept(receipt, NOW)  # still accepted once
        await spool.purge(NOW - timedelta(hours=72))  # rows kept (recent), WAL emptied
        assert await spool.outbound_state("msg-1") is not None
        assert _holds(path, TOKEN[:4] + " " + TOKEN[4:8], TOKEN[::-1], "a1b2c3d4e5f60718") == []
        assert _holds(path, "Sisa kredit 12 kWh")


async def test_the_housekeeper_purges_old_rows_and_empties_every_wal(tmp_path: Path) -> None:
    pdu = encode_deliver(CUSTOMER, text=COMMAND, timestamp=NOW)
    spool_path, journal_path = tmp_path / "spool.db", tmp_path / "spool-inbound.db"
    clock = [NOW]
    async with Spool(spool_path) as spool, InboundJournal(journal_path) as journal:
        await journal.persist(TakenPdu("m1", pdu, decode(pdu).pdu, None, NOW, "SM", 1, 0))
        await spool.accept(OutboundSms("old", CUSTOMER, text=RECEIPT), NOW, sending=True)
        await spool.mark("old", OutboundState.SENT, NOW)
        assert _holds(journal_path, pdu)
        await journal.recover(spool, NOW)  # the journal row goes once the spool has it
        await spool.ack_many([e.event_id for _, e in await spool.unacknowledged()])
        keeper = Housekeeper(
            spool, [journal], retention=timedelta(hours=72), interval=3600, clock=lambda: clock[0]
        )
        clock[0] = NOW + timedelta(hours=73)
        async with keeper:
            await keeper.wait_for_rounds(1)
        assert await spool.outbound_state("old") is None  # past the retention: deleted
        assert _holds(journal_path, pdu, PIN) == []
        assert _holds(spool_path, pdu, PIN, TOKEN[:4] + " " + TOKEN[4:8]) == []


async def test_the_housekeeper_runs_rounds_on_its_interval(tmp_path: Path) -> None:
    async with Spool(tmp_path / "spool.db") as spool:
        keeper = Housekeeper(
            spool, [], retention=timedelta(hours=72), interval=0.001, clock=lambda: NOW
        )
        async with keeper:
            await keeper.wait_for_rounds(3)
        assert keeper.rounds >= 3
    with pytest.raises(ValueError, match="interval"):
        Housekeeper(spool, [], retention=timedelta(hours=72), interval=0, clock=lambda: NOW)


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("kind", [Spool, InboundJournal])
async def test_durable_files_are_created_private(
    tmp_path: Path, kind: type[Spool] | type[InboundJournal]
) -> None:
    path = tmp_path / "file.db"
    old_umask = os.umask(0o022)  # the usual one, under which SQLite makes files 0644
    try:
        async with kind(path) as file:
            if isinstance(file, Spool):
                await file.accept(OutboundSms("m", CUSTOMER, text="x"), NOW)
            else:
                await file.persist(TakenPdu("m1", "00", None, "x", NOW))
            files = _files(path)
            assert {p.name for p in files} == {"file.db", "file.db-wal", "file.db-shm"}
            assert {p.name: _mode(p) for p in files} == {p.name: 0o600 for p in files}
    finally:
        os.umask(old_umask)


async def test_files_made_before_are_made_private_when_opened(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    async with Spool(path) as spool:
        await spool.accept(OutboundSms("m", CUSTOMER, text="x"), NOW)
    for file in _files(path):
        file.chmod(0o644)
    async with Spool(path):
        assert {p.name: _mode(p) for p in _files(path)} == {p.name: 0o600 for p in _files(path)}


# The whole node: a customer's command and its reply cross a real gateway (emulated modem
# on a pty, the local Mosquitto, a hub-side transport that acks); once the hub has acked
# and the housekeeper has run, none of the node's files holds the PIN, the text or a PDU.
@pytest.mark.services
@pytest.mark.timeout(30)
async def test_a_running_gateway_keeps_no_sms_text_once_the_hub_is_done(
    mosquitto_url: str, tmp_path: Path
) -> None:
    import uuid

    from gateway.config import GatewayConfig, ModemSection, MqttSection, PoolSection
    from gateway.mqtt import MqttSettings, MqttTransport, Topics
    from gateway.service import running_gateway
    from gateway.transport import TransportEvent
    from meter_sim.network.run import running_network

    echo = "+6281399999999"  # answers every SMS with the same text: a customer's command
    name, root = f"gw-{uuid.uuid4().hex[:8]}", f"pintar-test-{uuid.uuid4().hex[:10]}/v1"
    async with (
        running_network(1, echo=echo) as network,
        MqttTransport(MqttSettings(topics=Topics(root=root))) as hub,
    ):
        config = GatewayConfig(
            name=name,
            spool_path=tmp_path / "spool.db",
            mqtt=MqttSection(host="127.0.0.1", port=1883, topic_root=root, max_backoff=1.0),
            modems=[ModemSection(port=network.modems[0].device_path, name="m0")],
            pool=PoolSection(min_interval=0.0),
            housekeeping_interval=0.05,
        )
        async with running_gateway(config) as node:
            keeper = node.housekeeper
            assert keeper.retention == timedelta(hours=72) and keeper.interval == 0.05
            await hub.wait_for_gateway(name)
            assert await hub.send(OutboundSms("msg-1", echo, text=COMMAND))
            stream = hub.events()
            seen: list[TransportEvent] = []
            while not (
                any(isinstance(e, InboundSms) and e.text == COMMAND for e in seen)
                and any(isinstance(e, SendResult) for e in seen)
            ):
                event = await anext(stream)
                seen.append(event)
                await hub.ack(event.event_id)
            inbound = next(e for e in seen if isinstance(e, InboundSms) and e.text == COMMAND)
            pdus = list(inbound.raw_pdus)
            assert pdus and _holds(config.spool_path, PIN)  # still unacked, or in the WAL
            # The acks travel over MQTT: each housekeeping round is a point to look again.
            while await node.spool.unacknowledged() or await node.spool.pending():
                await keeper.wait_for_rounds(keeper.rounds + 1)
            sent = await node.spool.outbound_state("msg-1")
            assert sent is not None and sent.state is OutboundState.SENT and sent.sms.text == ""
            await keeper.wait_for_rounds(keeper.rounds + 1)  # a whole round after the last ack
            for path in (config.spool_path, config.journal_path):
                assert _holds(path, COMMAND, PIN, *pdus) == []
                assert {_mode(p) for p in _files(path)} == {0o600}


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("spool_retention_hours = 24", "spool_retention_hours"),  # status reports need 72 h
        ("housekeeping_interval = 0", "housekeeping_interval"),
    ],
)
def test_bad_housekeeping_settings_name_the_problem(
    tmp_path: Path, line: str, problem: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gateway.config import GatewayConfigError, load_gateway_config

    for key in os.environ:
        if key.startswith("PINTAR_GATEWAY_"):
            monkeypatch.delenv(key)
    path = tmp_path / "gw.toml"
    path.write_text(f'name = "gw"\n{line}\n[[modems]]\nport = "/dev/x"\n')
    with pytest.raises(GatewayConfigError, match=problem):
        load_gateway_config(path)
    path.write_text('name = "gw"\n[[modems]]\nport = "/dev/x"\n')
    config = load_gateway_config(path)
    assert (config.spool_retention_hours, config.housekeeping_interval) == (72.0, 60.0)
    monkeypatch.setenv("PINTAR_GATEWAY_HOUSEKEEPING_INTERVAL", "15")
    assert load_gateway_config(path).housekeeping_interval == 15.0


async def test_a_corrupt_outbound_row_is_blanked_whole_not_left_failing(tmp_path: Path) -> None:
    async with Spool(tmp_path / "spool.db") as spool:
        await spool.accept(OutboundSms("m", CUSTOMER, text=RECEIPT), NOW, sending=True)
        await spool.db.execute(f"UPDATE outbound SET body = 'not json {TOKEN}'")
        await spool.mark("m", OutboundState.SENT, NOW)  # no error: the mark is made
        rows = list(await spool.db.execute_fetchall("SELECT body, state FROM outbound"))
        assert [tuple(r) for r in rows] == [("", "sent")]
