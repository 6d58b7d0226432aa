"""The modem driver against a scripted device on a real pty: the exact AT dialogue."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import TypeVar

import pytest

from gateway.at import errors
from gateway.at.config import ModemConfig
from gateway.at.errors import ErrorSource, Reaction, StartupError
from gateway.at.events import (
    InboundPersisted,
    InboundSms,
    ModemEvent,
    ModemState,
    ModemStateChanged,
    PersistFailed,
    StatusReportReceived,
    StorageFull,
    Unsolicited,
)
from gateway.at.modem import Modem
from gateway.at.responses import RegistrationStatus
from gateway.pdu import Deliver, encode_deliver, encode_status_report, encode_submit
from tests.gateway.at_device import AtDevice, ReplyItem, tpdu_length
from tests.gateway.test_at_errors import TABLE

pytestmark = pytest.mark.timeout(15)

WAIT = 5.0  # upper bound for awaiting an event; only reached when something is broken
WHEN = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
SENDER = "+6281234567890"

STARTUP = [
    "\x1b",
    "AT",
    "ATZ",
    "ATE0",
    "AT+CMEE=1",
    "AT+CPIN?",
    "AT+CREG?",
    "AT+CSQ",
    "AT+CMGF=0",
    "AT+CSCA?",
    "AT+CSMS?",
    "AT+CPMS=?",
    'AT+CPMS="SM","SM","SM"',
    "AT+CNMI=?",
    "AT+CNMI=2,1,0,1,0",
    "AT+CMMS=2",
    "AT+CGSN",
    "AT+COPS?",
]
SWEEP = ["AT+CPMS?", "AT+CMGL=4"]

E = TypeVar("E")


def deliver_pdu(text: str = "hello", sender: str = SENDER) -> str:
    return encode_deliver(sender, text=text, timestamp=WHEN)


def fast_config(device: AtDevice, **overrides: object) -> ModemConfig:
    config = ModemConfig(
        port=device.path,
        name="m1",
        probe_timeout=2.0,
        probe_attempts=3,
        command_timeout=WAIT,
        prompt_timeout=WAIT,
        send_timeout=WAIT,
        pin_poll_interval=0.01,
        registration_poll_interval=0.01,
        registration_timeout=WAIT,
        storage_poll_interval=3600,
        reset_timeout=0.2,
        reopen_interval=0.01,
    )
    return dataclasses.replace(config, **overrides)  # type: ignore[arg-type]


def state_of(modem: Modem) -> ModemState:
    return modem.state  # a call, so the type checker does not keep an earlier narrowing


class Store:
    """The owner's persist callback: keeps what it is given; can be told to fail."""

    def __init__(self) -> None:
        self.items: list[InboundSms] = []
        self.failures = 0

    async def __call__(self, sms: InboundSms) -> None:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("database unavailable")
        self.items.append(sms)


class Harness:
    def __init__(self, device: AtDevice) -> None:
        self.device = device
        self.store = Store()
        self.events: asyncio.Queue[ModemEvent] = asyncio.Queue()
        self.seen: list[ModemEvent] = []

    def on_event(self, event: ModemEvent) -> None:
        self.seen.append(event)
        self.events.put_nowait(event)

    def modem(self, **overrides: object) -> Modem:
        return Modem(
            fast_config(self.device, **overrides),
            persist=self.store,
            on_event=self.on_event,
        )

    async def next(self, kind: type[E], where: Callable[[E], bool] = lambda _: True) -> E:
        """The next event of this kind (and matching `where`); earlier others are skipped."""

        async def find() -> E:
            while True:
                event = await self.events.get()
                if isinstance(event, kind) and where(event):
                    return event

        return await asyncio.wait_for(find(), WAIT)


@pytest.fixture
async def device() -> AsyncIterator[AtDevice]:
    async with AtDevice() as device:
        yield device


@pytest.fixture
def harness(device: AtDevice) -> Harness:
    return Harness(device)


@pytest.fixture
async def modem(harness: Harness) -> AsyncIterator[Modem]:
    async with harness.modem() as modem:
        await harness.device.wait_for(r"AT\+CMGL=4")
        yield modem


# -- start-up ---------------------------------------------------------------------------------


async def test_startup_dialogue(harness: Harness, modem: Modem) -> None:
    assert harness.device.commands == [*STARTUP, *SWEEP]
    assert harness.device.echo is False
    assert modem.state is ModemState.READY
    assert modem.info is not None
    assert modem.info.registration is RegistrationStatus.HOME
    assert modem.info.signal is not None and modem.info.signal.dbm == -71
    assert modem.info.smsc == "+6281100000"
    assert modem.info.cnmi == "2,1,0,1,0"
    assert modem.info.storage is not None and modem.info.storage.total == 30
    states = [e.state for e in harness.seen if isinstance(e, ModemStateChanged)]
    assert states == [ModemState.STARTING, ModemState.READY]


async def test_pin_entry(harness: Harness) -> None:
    device = harness.device
    device.on(r"AT\+CPIN\?", ["+CPIN: SIM PIN", "OK"], once=True)
    device.on(r'AT\+CPIN="1234"', ["OK"])
    async with harness.modem(pin="1234") as modem:
        assert modem.state is ModemState.READY
    sim = device.commands[
        device.commands.index("AT+CMEE=1") + 1 : device.commands.index("AT+CREG?")
    ]
    assert sim == ["AT+CPIN?", 'AT+CPIN="1234"', "AT+CPIN?"]


async def test_pin_asked_but_not_configured_is_a_security_failure(harness: Harness) -> None:
    harness.device.on(r"AT\+CPIN\?", ["+CPIN: SIM PIN", "OK"])
    with pytest.raises(StartupError) as caught:
        async with harness.modem():
            pass
    assert caught.value.reaction is Reaction.SECURITY
    assert not harness.device.matching(r"AT\+CPIN=.*")
    changed = [e for e in harness.seen if isinstance(e, ModemStateChanged)]
    assert changed[-2].state is ModemState.OUT_OF_SERVICE
    assert changed[-2].reaction is Reaction.SECURITY


async def test_puk_and_missing_sim_take_the_modem_out_of_service(harness: Harness) -> None:
    harness.device.on(r"AT\+CPIN\?", ["+CPIN: SIM PUK", "OK"], once=True)
    with pytest.raises(StartupError) as caught:
        async with harness.modem():
            pass
    assert caught.value.reaction is Reaction.SECURITY
    harness.device.on(r"AT\+CPIN\?", ["+CME ERROR: 10"], once=True)
    with pytest.raises(StartupError) as caught:
        async with harness.modem():
            pass
    assert caught.value.reaction is Reaction.NO_SIM


async def test_cnmi_variant_refused_falls_back_to_next(harness: Harness) -> None:
    device = harness.device
    device.on(r"AT\+CNMI=2,1,0,1,0", ["+CMS ERROR: 303"])
    device.on(r"AT\+CNMI=2,1,0,2,0", ["OK"])
    async with harness.modem() as modem:
        assert modem.info is not None and modem.info.cnmi == "2,1,0,2,0"
    assert device.matching(r"AT\+CNMI=.*") == [
        "AT+CNMI=?",
        "AT+CNMI=2,1,0,1,0",
        "AT+CNMI=2,1,0,2,0",
    ]


async def test_cnmi_and_cpms_probes_steer_the_choice(harness: Harness) -> None:
    device = harness.device
    device.on(r"AT\+CNMI=\?", ["+CNMI: (0-2),(0-3),(0,2),(0,2),(0,1)", "OK"])
    device.on(r"AT\+CNMI=2,1,0,2,0", ["OK"])
    device.on(r"AT\+CPMS=\?", ['+CPMS: ("ME","MT"),("ME","MT"),("ME")', "OK"])
    device.on(r'AT\+CPMS="ME","ME","ME"', ["+CPMS: 0,100,0,100,0,100", "OK"])
    async with harness.modem() as modem:
        assert modem.info is not None
        assert modem.info.cnmi == "2,1,0,2,0"
        assert modem.info.storage is not None and modem.info.storage.storage == "ME"
    assert device.matching(r"AT\+CNMI=.*") == ["AT+CNMI=?", "AT+CNMI=2,1,0,2,0"]
    assert device.matching(r"AT\+CPMS=.*") == ["AT+CPMS=?", 'AT+CPMS="ME","ME","ME"']


async def test_no_cnmi_at_all_still_starts(harness: Harness) -> None:
    harness.device.on(r"AT\+CNMI=.*", ["ERROR"])
    async with harness.modem() as modem:
        assert modem.state is ModemState.READY
        assert modem.info is not None and modem.info.cnmi is None


async def test_registration_polling(harness: Harness) -> None:
    device = harness.device
    answers = iter(["+CREG: 0,2", "+CREG: 0,0", "+CREG: 0,5"])

    def creg(match: re.Match[str], device: AtDevice) -> list[ReplyItem]:
        return ["+CREG: 1", next(answers), "OK"]  # a URC slipped in before each answer

    device.on(r"AT\+CREG\?", creg)
    async with harness.modem() as modem:
        assert modem.info is not None
        assert modem.info.registration is RegistrationStatus.ROAMING
    assert len(device.matching(r"AT\+CREG\?")) == 3


async def test_never_registered_is_a_network_failure(harness: Harness) -> None:
    harness.device.on(r"AT\+CREG\?", ["+CREG: 0,3", "OK"])
    with pytest.raises(StartupError) as caught:
        async with harness.modem(registration_timeout=0.2):
            pass
    assert caught.value.reaction is Reaction.NETWORK


async def test_probe_retries_after_garbage(harness: Harness) -> None:
    device = harness.device
    device.on(r"AT", [b"\xff\xfe\x00garbage"], once=True)  # noise, no OK: probe times out
    async with harness.modem(probe_timeout=0.2) as modem:
        assert modem.state is ModemState.READY
    assert device.commands[:3] == ["\x1b", "AT", "AT"]


async def test_silent_modem_fails_startup_as_hung(harness: Harness) -> None:
    harness.device.hang()
    with pytest.raises(StartupError) as caught:
        async with harness.modem(probe_timeout=0.1, probe_attempts=2):
            pass
    assert caught.value.reaction is Reaction.HUNG
    assert harness.device.commands == ["\x1b", "AT", "AT"]


async def test_smsc_is_set_when_configured_differently(harness: Harness) -> None:
    async with harness.modem(smsc="+6281107000") as modem:
        assert modem.info is not None and modem.info.smsc == "+6281107000"
    assert harness.device.matching(r"AT\+CSCA.*") == ["AT+CSCA?", 'AT+CSCA="+6281107000",145']


# -- sending ----------------------------------------------------------------------------------


async def test_send_writes_length_prompt_pdu_and_ctrl_z(harness: Harness, modem: Modem) -> None:
    (part,) = encode_submit(SENDER, text="Token 1234", status_report=True)
    before = len(harness.device.raw_received)
    assert await modem.send_pdu(part) == 0
    written = bytes(harness.device.raw_received[before:])
    assert written == f"AT+CMGS={part.tpdu_length}\r".encode() + part.hex.encode() + b"\x1a"
    assert harness.device.sent_pdus == [part.hex]
    assert await modem.send_pdu(part) == 1  # references count up


async def test_send_with_echo_on(harness: Harness) -> None:
    harness.device.on(r"ATE0", ["OK"])  # a modem that ignores ATE0 keeps echoing
    async with harness.modem() as modem:
        (part,) = encode_submit(SENDER, text="hi")
        assert await modem.send_pdu(part) == 0
    assert harness.device.echo


async def test_urc_between_send_and_its_answer_is_handled(harness: Harness, modem: Modem) -> None:
    device = harness.device
    index = device.store(deliver_pdu("meter 42"))

    def submit(match: re.Match[str], device: AtDevice) -> list[ReplyItem]:
        return ["RING", f'+CMTI: "SM",{index}', "+CMGS: 77", "OK"]

    device.on(r"[0-9A-F]+\x1a", submit)
    (part,) = encode_submit(SENDER, text="hi")
    assert await modem.send_pdu(part) == 77
    persisted = await harness.next(InboundPersisted)
    assert isinstance(persisted.sms.decoded, Deliver)
    assert persisted.sms.decoded.text == "meter 42"
    assert persisted.deleted and index not in device.storage
    assert any(isinstance(e, Unsolicited) and e.urc.name == "RING" for e in harness.seen)


@pytest.mark.parametrize(("source", "code", "reaction", "kind"), TABLE)
async def test_send_error_mapped_to_reaction(
    harness: Harness,
    modem: Modem,
    source: ErrorSource,
    code: int,
    reaction: Reaction,
    kind: type[errors.CommandError],
) -> None:
    harness.device.on(r"[0-9A-F]+\x1a", [f"{source.value}: {code}"])
    (part,) = encode_submit(SENDER, text="hi")
    with pytest.raises(kind) as caught:
        await modem.send_pdu(part)
    assert caught.value.reaction is reaction
    assert caught.value.code == code
    if reaction is Reaction.STORAGE_FULL:
        await harness.next(StorageFull)
    assert modem.state is ModemState.READY  # only a timeout marks the modem hung


async def test_error_instead_of_prompt(harness: Harness, modem: Modem) -> None:
    harness.device.on(r"AT\+CMGS=\d+", ["+CMS ERROR: 304"])
    (part,) = encode_submit(SENDER, text="hi")
    with pytest.raises(errors.RejectedError):
        await modem.send_pdu(part)


# -- hang, reset, recovery --------------------------------------------------------------------


async def test_hang_timeout_reset_recovery(harness: Harness) -> None:
    device = harness.device
    async with harness.modem(prompt_timeout=0.2) as modem:
        await device.wait_for(r"AT\+CMGL=4")
        device.hang()
        (part,) = encode_submit(SENDER, text="hi")
        with pytest.raises(errors.CommandTimeout) as caught:
            await modem.send_pdu(part)
        assert caught.value.reaction is Reaction.HUNG
        hung = await harness.next(ModemStateChanged, lambda e: e.state is ModemState.HUNG)
        assert hung.reaction is Reaction.HUNG
        with pytest.raises(errors.ModemHung):
            await modem.send_pdu(part)
        await device.wait_for("\x1b", 2)  # the abandoned PDU (the first ESC was the probe's)
        assert device.commands[-2:] == [f"AT+CMGS={part.tpdu_length}", "\x1b"]

        mark = len(device.commands)
        await modem.reset()
        assert modem.state is ModemState.READY
        assert device.resets == 1
        assert device.commands[mark : mark + 1 + len(STARTUP)] == ["AT+CFUN=1,1", *STARTUP]
        assert await modem.send_pdu(part) == 0
    assert device.sent_pdus == [part.hex]


async def test_reset_of_a_dead_modem_reports_out_of_service(harness: Harness) -> None:
    device = harness.device
    async with harness.modem(probe_timeout=0.1, probe_attempts=2) as modem:
        device.on(r"AT", [])  # the reboot never finishes: AT is never answered
        with pytest.raises(StartupError):
            await modem.reset()
        assert modem.state is ModemState.OUT_OF_SERVICE
        device.on(r"AT", ["OK"])
        await modem.reset()  # callable again later, from any state
        assert state_of(modem) is ModemState.READY


# -- receiving --------------------------------------------------------------------------------


async def test_cmti_read_persist_then_delete(harness: Harness, modem: Modem) -> None:
    device = harness.device
    index = device.deliver(deliver_pdu("SALDO 12.5"))
    persisted = await harness.next(InboundPersisted)
    sms = persisted.sms
    assert (sms.modem, sms.index, sms.storage, sms.error) == ("m1", index, "SM", None)
    assert isinstance(sms.decoded, Deliver) and sms.decoded.sender == SENDER
    assert harness.store.items == [sms]
    tail = device.commands[-2:]
    assert tail == [f"AT+CMGR={index}", f"AT+CMGD={index}"]
    assert device.storage == {}


async def test_persist_failure_keeps_the_message_on_the_sim(harness: Harness, modem: Modem) -> None:
    device = harness.device
    harness.store.failures = 1
    index = device.deliver(deliver_pdu("first try fails"))
    failed = await harness.next(PersistFailed)
    assert failed.sms.index == index
    assert not device.matching(r"AT\+CMGD=.*")
    assert index in device.storage
    modem.request_sweep()  # the next sweep (periodic in service) tries again
    persisted = await harness.next(InboundPersisted)
    assert persisted.sms.index == index
    assert device.matching(r"AT\+CMGD=.*") == [f"AT+CMGD={index}"]
    assert device.storage == {}


async def test_periodic_listing_finds_a_forgotten_message(harness: Harness) -> None:
    device = harness.device
    async with harness.modem(storage_poll_interval=0.05):
        await device.wait_for(r"AT\+CMGL=4")
        index = device.store(deliver_pdu("no +CMTI for me"))  # a notification that got lost
        persisted = await harness.next(InboundPersisted)
    assert persisted.sms.index == index
    assert isinstance(persisted.sms.decoded, Deliver)
    assert persisted.sms.decoded.text == "no +CMTI for me"
    assert device.storage == {}


async def test_messages_stored_before_startup_are_taken(harness: Harness) -> None:
    device = harness.device
    first, second = device.store(deliver_pdu("one")), device.store(deliver_pdu("two"), stat=1)
    outgoing = device.store(encode_submit(SENDER, text="draft")[0].hex, stat=2)
    async with harness.modem():
        await harness.next(InboundPersisted)
        await harness.next(InboundPersisted)
    assert sorted(s.index or 0 for s in harness.store.items) == [first, second]
    assert list(device.storage) == [outgoing]  # stored outgoing messages are left alone


async def test_sim_full_on_send_drains_storage(harness: Harness, modem: Modem) -> None:
    device = harness.device
    device.storage_total = 3
    for n in range(3):
        device.store(deliver_pdu(f"msg {n}"))
    device.on(r"[0-9A-F]+\x1a", ["+CMS ERROR: 322"], once=True)
    (part,) = encode_submit(SENDER, text="hi")
    with pytest.raises(errors.StorageFullError):
        await modem.send_pdu(part)
    await harness.next(StorageFull)
    for _ in range(3):
        await harness.next(InboundPersisted)
    assert device.storage == {}
    assert sorted(
        str(d.decoded.text) for d in harness.store.items if isinstance(d.decoded, Deliver)
    ) == [
        "msg 0",
        "msg 1",
        "msg 2",
    ]
    assert await modem.send_pdu(part) == 0


async def test_full_storage_at_startup_is_drained(harness: Harness) -> None:
    device = harness.device
    device.storage_total = 2
    device.store(deliver_pdu("a"))
    device.store(deliver_pdu("b"))
    async with harness.modem():
        full = await harness.next(StorageFull)
        assert "2 of 2" in full.reason
        await harness.next(InboundPersisted)
        await harness.next(InboundPersisted)
    assert device.storage == {}


async def test_listing_refused_falls_back_to_reading_each_index(harness: Harness) -> None:
    device = harness.device
    device.storage_total = 4
    index = device.store(deliver_pdu("found anyway"))
    device.on(r"AT\+CMGL=4", ["+CMS ERROR: 302"])
    async with harness.modem():
        persisted = await harness.next(InboundPersisted)
    assert persisted.sms.index == index
    assert device.matching(r"AT\+CMGR=\d+")[:4] == [f"AT+CMGR={i}" for i in range(1, 5)]


async def test_invalid_index_is_skipped_and_storage_relisted(
    harness: Harness, modem: Modem
) -> None:
    device = harness.device
    device.unsolicited('+CMTI: "SM",9')  # nothing at 9: CMS 321
    listed = len(device.matching(r"AT\+CMGL=4"))
    await device.wait_for(r"AT\+CMGL=4", listed + 1)
    assert device.matching(r"AT\+CMGR=\d+") == ["AT+CMGR=9"]  # not retried: no 321 loop


async def test_undecodable_pdu_is_persisted_raw_then_deleted(
    harness: Harness, modem: Modem
) -> None:
    device = harness.device
    index = device.deliver("0004FFFF")
    persisted = await harness.next(InboundPersisted)
    assert persisted.sms.decoded is None and persisted.sms.error
    assert persisted.sms.pdu == "0004FFFF" and persisted.sms.index == index
    assert device.storage == {}


async def test_direct_status_report_is_emitted_with_its_reference(
    harness: Harness, modem: Modem
) -> None:
    report = encode_status_report(
        SENDER, message_reference=42, status=0, submitted=WHEN, discharged=WHEN
    )
    harness.device.unsolicited(f"+CDS: {tpdu_length(report)}", report)
    event = await harness.next(StatusReportReceived)
    assert event.message_reference == 42
    assert event.report.recipient == SENDER
    assert harness.store.items == [event.sms]
    assert not harness.device.matching(r"AT\+CNMA")  # AT+CSMS service 0: no ack expected


async def test_direct_delivery_acknowledged_when_the_mode_requires(harness: Harness) -> None:
    device = harness.device
    device.on(r"AT\+CSMS\?", ["+CSMS: 1,1,1,1", "OK"])
    async with harness.modem() as modem:
        assert modem.info is not None and modem.info.ack_direct
        pdu = deliver_pdu("direct")
        device.unsolicited(f"+CMT: ,{tpdu_length(pdu)}", pdu)
        persisted = await harness.next(InboundPersisted)
        await device.wait_for(r"AT\+CNMA")
    assert persisted.sms.index is None and not persisted.deleted
    assert harness.store.items == [persisted.sms]


async def test_direct_delivery_not_acknowledged_when_persist_fails(harness: Harness) -> None:
    device = harness.device
    device.on(r"AT\+CSMS\?", ["+CSMS: 1,1,1,1", "OK"])
    harness.store.failures = 1
    async with harness.modem():
        pdu = deliver_pdu("direct")
        device.unsolicited(f"+CMT: ,{tpdu_length(pdu)}", pdu)
        await harness.next(PersistFailed)
        device.unsolicited(f"+CMT: ,{tpdu_length(pdu)}", pdu)  # the network tries again
        await harness.next(InboundPersisted)
    assert device.matching(r"AT\+CNMA") == ["AT+CNMA"]


async def test_stored_status_report_via_cdsi(harness: Harness, modem: Modem) -> None:
    device = harness.device
    report = encode_status_report(
        SENDER, message_reference=9, status=0x40, submitted=WHEN, discharged=WHEN
    )
    index = device.store(report)
    device.unsolicited(f'+CDSI: "SM",{index}')
    event = await harness.next(StatusReportReceived)
    assert (event.message_reference, event.report.status) == (9, 0x40)
    assert device.storage == {}


async def test_storage_status_signal_registration(harness: Harness, modem: Modem) -> None:
    harness.device.store(deliver_pdu())
    status = await modem.storage_status()
    assert (status.storage, status.used, status.total) == ("SM", 1, 30)
    assert (await modem.signal()).rssi == 21
    assert await modem.registration() is RegistrationStatus.HOME
