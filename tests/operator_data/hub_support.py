"""A whole hub on the simulated network for the workflow tests: the real Hub over a
SpooledGateway + NetworkCarrier at the short code, the P2APST simulator over real TCP, a
scripted meter speaking real frames with the real STS decoder, and scripted phones."""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from sqlalchemy import func, select

from firmware_protocol import sts
from firmware_protocol.frames import (
    Alarm,
    AlarmKind,
    Endpoint,
    Message,
    MeterStatus,
    Role,
    TokenDelivery,
    TokenOutcome,
    TokenResult,
)
from gateway.spool import Spool
from gateway.spooled import SpooledGateway
from gateway.transport import Transport
from meter_sim.meter.sts_decoder import StsDecoder
from meter_sim.meter.sts_decoder import TokenOutcome as StsOutcome
from meter_sim.network import NetworkSms, NetworkStatusReport, SmsNetwork
from meter_sim.network.carrier import NetworkCarrier
from operator_data.crypto import MasterKey
from operator_data.hub import Hub, HubPurchaseJournal, HubReportOutbox
from operator_data.hub.sla import SlaMonitor
from operator_data.registry import CustomerIn, MeterIn, Registry, SimIn
from operator_data.settings import HubSettings, PriceTable, PriceVersion, Settings, SlaTargets
from operator_data.store import Flow, MeterState, Store, schema
from p2apst_adapter.client import ClientSettings, P2apstClient
from p2apst_adapter.simulator import P2apstSimulator, SimMeter, SimulatorSettings

SHORT_CODE = "87000"
PIN = "123456"
CUSTOMER = "530000000001"
METER = "14000000001"
METER_SIM = "+6281100000001"
PHONE = "+6281200000001"
PRICES = {
    Flow.HUB_TO_CUSTOMER: 150,
    Flow.HUB_TO_METER: 100,
    Flow.METER_TO_HUB: 50,
    Flow.METER_TO_CUSTOMER: 120,
    Flow.CUSTOMER_TO_HUB: 0,
}

_OUTCOMES = {
    StsOutcome.ACCEPTED: TokenOutcome.ACCEPTED,
    StsOutcome.USED: TokenOutcome.USED,
    StsOutcome.OLD: TokenOutcome.OLD,
    StsOutcome.INVALID_CRC: TokenOutcome.INVALID_CRC,
    StsOutcome.KEY_EXPIRED: TokenOutcome.KEY_EXPIRED,
    StsOutcome.OVERFLOW: TokenOutcome.OVERFLOW,
    StsOutcome.UNSUPPORTED: TokenOutcome.INVALID_CRC,
}


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


def sim_meter() -> SimMeter:
    return SimMeter.from_json(
        {
            "meter_number": METER,
            "customer_id": CUSTOMER,
            "customer_name": "BUDI SANTOSO",
            "tariff": "R1",
            "power_va": 1300,
        }
    )


class ScriptedMeter:
    """A meter that takes TOKEN_DELIVERY frames with the real Endpoint and STS decoder
    and answers with TOKEN_RESULT (unless `answers` is off)."""

    def __init__(self, network: SmsNetwork, key: bytes, *, answers: bool = True) -> None:
        self.network = network
        self.answers = answers
        self.endpoint = Endpoint(role=Role.METER, meter_number=METER, keys={1: key}, key_id=1)
        meter = sim_meter()
        self.decoder = StsDecoder(meter.decoder_key(), meter.base_date)
        self.received: list[Message] = []
        self.sent_frames: list[bytes] = []
        self.applied: list[str] = []
        self._ids = iter(range(1, 1 << 30))
        network.attach(METER_SIM, self)

    async def receive_sms(self, sms: NetworkSms) -> bool:
        assert sms.data is not None or sms.text is not None
        got = self.endpoint.receive(sms.data if sms.data is not None else sms.text or "")
        if got is None:
            return True
        self.received.append(got.message)
        if isinstance(got.message, TokenDelivery) and self.answers:
            outcome = self.decoder.accept(got.message.token)
            if outcome.outcome is StsOutcome.ACCEPTED:
                self.applied.append(got.message.token)
            self.send(
                TokenResult(
                    reference=got.message.reference,
                    outcome=_OUTCOMES[outcome.outcome],
                    at=self.network.now().replace(microsecond=0),
                    credit_kwh=outcome.credit_after.quantize(Decimal("0.01")),
                    added_kwh=outcome.kwh_added.quantize(Decimal("0.01")),
                )
            )
        return True

    async def receive_status_report(self, report: NetworkStatusReport) -> None:
        return None

    def seal(self, message: Message) -> bytes:
        frames = self.endpoint.seal(message, message_id=next(self._ids))
        assert len(frames) == 1
        return frames[0]

    def send(self, message: Message) -> bytes:
        frame = self.seal(message)
        self.send_raw(frame)
        return frame

    def send_raw(self, frame: bytes) -> None:
        self.sent_frames.append(frame)
        self.network.submit(METER_SIM, SHORT_CODE, data=frame)

    def alarm(self, kind: AlarmKind, credit: str = "3.50") -> bytes:
        return self.send(
            Alarm(
                occurred_at=self.network.now().replace(microsecond=0),
                kind=kind,
                credit_kwh=Decimal(credit),
                status=MeterStatus.LOW_CREDIT if kind is AlarmKind.LOW_CREDIT else MeterStatus(0),
            )
        )


def make_token(kwh: str = "20", rnd: int = 3) -> str:
    """A real STS credit token for the test meter, issued now."""
    meter = sim_meter()
    fields = sts.credit(0, rnd, datetime.now(UTC), Decimal(kwh), meter.base_date)
    return sts.encode(fields, meter.decoder_key())


class Phone:
    def __init__(self, network: SmsNetwork, msisdn: str) -> None:
        self.network = network
        self.msisdn = msisdn
        self.inbox: list[str] = []
        network.attach(msisdn, self)

    def text(self, body: str) -> None:
        self.network.submit(self.msisdn, SHORT_CODE, text=body)

    async def receive_sms(self, sms: NetworkSms) -> bool:
        self.inbox.append(sms.text or "")
        return True

    async def receive_status_report(self, report: NetworkStatusReport) -> None:
        return None


@dataclass
class Rig:
    hub: Hub
    store: Store
    registry: Registry
    network: SmsNetwork
    meter: ScriptedMeter
    phone: Phone
    clock: Clock
    settings: Settings
    master: MasterKey
    simulator: P2apstSimulator | None
    client: P2apstClient | None
    comms_key: bytes
    breaches: list[Any] = field(default_factory=list)

    async def until(self, check: Callable[[], Awaitable[bool]], seconds: float = 20.0) -> None:
        async with asyncio.timeout(seconds):
            await self.hub.wait_until(check)

    async def count(self, table: Any, *where: Any) -> int:
        async with self.store.read() as conn:
            return int(
                await conn.scalar(select(func.count()).select_from(table).where(*where)) or 0
            )

    async def rows(self, table: Any, *where: Any) -> list[Any]:
        async with self.store.read() as conn:
            return list(await conn.execute(select(table).where(*where)))

    def inbox_has(self, count: int) -> Callable[[], Awaitable[bool]]:
        async def check() -> bool:
            return len(self.phone.inbox) >= count

        return check


async def register(registry: Registry, comms_key: bytes) -> None:
    await registry.create_customer(CustomerIn(CUSTOMER, "Budi Santoso", "R1", 1300))
    await registry.create_meter(
        MeterIn(METER, CUSTOMER, "123456", "01", 1, 2, 2014),
        comms_key=comms_key,
        comms_key_id="k1",
        state=MeterState.ACTIVE,
    )
    await registry.create_sim(
        SimIn(METER_SIM, "8962100000000000001", "Telkomsel", "Budi Santoso, PT Operator Data")
    )
    await registry.bind_sim(METER_SIM, METER, actor="test")
    await registry.register_phone(PHONE, CUSTOMER)
    await registry.set_pin(PHONE, PIN, actor="test")


@asynccontextmanager
async def running_rig(
    store: Store,
    tmp_path: Path,
    *,
    p2apst: bool = True,
    meter_answers: bool = True,
    sla: SlaTargets | None = None,
    push_token: str | None = None,
    simulator_settings: SimulatorSettings | None = None,
    wrap_transport: Callable[[Transport], Transport] | None = None,
    client_changes: dict[str, Any] | None = None,
    hub_changes: dict[str, Any] | None = None,
) -> AsyncIterator[Rig]:
    master = MasterKey(secrets.token_bytes(32))
    clock = Clock()
    settings = Settings(
        service={"short_code": SHORT_CODE},  # type: ignore[arg-type]
        sla=sla or SlaTargets(),
        hub=HubSettings(
            sweep_interval_s=3600,
            token_resends=2,
            push_token=None if push_token is None else SecretStr(push_token),
            **(hub_changes or {}),
        ),
        prices=PriceTable(
            versions=[
                PriceVersion(
                    version="t1",
                    effective_from=datetime(2020, 1, 1, tzinfo=UTC),
                    prices_idr={flow: PRICES[flow] for flow in Flow},
                )
            ]
        ),
    )
    registry = Registry(store, master_key=master, pin_policy=settings.pin, clock=clock)
    comms_key = secrets.token_bytes(16)
    await register(registry, comms_key)
    async with AsyncExitStack() as stack:
        network = await stack.enter_async_context(SmsNetwork())
        meter = ScriptedMeter(network, comms_key, answers=meter_answers)
        phone = Phone(network, PHONE)
        spool = await stack.enter_async_context(Spool(tmp_path / "spool.db"))
        gateway = await stack.enter_async_context(
            SpooledGateway("gw1", NetworkCarrier(network, SHORT_CODE), spool)
        )
        simulator = client = outbox = None
        sla_monitor = SlaMonitor(settings.sla)  # the hub's and its report outbox's
        if p2apst:
            simulator = await stack.enter_async_context(
                P2apstSimulator([sim_meter()], settings=simulator_settings)
            )
            outbox = HubReportOutbox(store, master, sla=sla_monitor, clock=clock)
            client = await stack.enter_async_context(
                P2apstClient(
                    "127.0.0.1",
                    simulator.port,
                    journal=HubPurchaseJournal(store, master, clock=clock),
                    outbox=outbox,
                    settings=dataclasses.replace(
                        ClientSettings(
                            echo_interval=3600, report_retry_interval=0.2, resume_pending=False
                        ),
                        **(client_changes or {}),
                    ),
                )
            )
        hub = Hub(
            settings,
            store,
            registry,
            gateway if wrap_transport is None else wrap_transport(gateway),
            client,
            clock=clock,
            sla=sla_monitor,
            run_sweeper=False,
        )
        rig = Rig(
            hub, store, registry, network, meter, phone, clock, settings, master,
            simulator, client, comms_key,
        )  # fmt: skip
        hub.on_sla_breach(rig.breaches.append)
        await stack.enter_async_context(hub)
        yield rig


__all__ = [
    "CUSTOMER",
    "METER",
    "PHONE",
    "PIN",
    "PRICES",
    "Rig",
    "make_token",
    "running_rig",
    "schema",
]
