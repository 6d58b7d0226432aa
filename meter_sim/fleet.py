"""A deterministic fleet of simulated meters and their customers' phones.

`build_members(count, seed)` makes the same customers every time for the same seed: meter
numbers, SIM and phone MSISDNs, 12-digit customer IDs, names, power categories, STS key data
under one demo vending key, and comms keys derived from the seed and the meter number.
From the members come the registry CSV that `pintar registry import` takes, the P2APST
simulator's `SimMeter` list, and a running `Fleet` of meters and phones on a network.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import hmac
import io
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from types import TracebackType
from typing import TextIO

from firmware_protocol import sts
from meter_sim.clock import SimClock
from meter_sim.meter.faults import MeterFaults
from meter_sim.meter.simulated import Clock, MeterIdentity, SimulatedMeter, Sleep, Wire
from meter_sim.meter.state_store import StateStore
from meter_sim.network import SmsNetwork
from meter_sim.phones.behaviour import Behaviour
from meter_sim.phones.ledger import LedgerReport, check_ledger
from meter_sim.phones.phone import SimulatedPhone
from p2apst_adapter.simulator import SimMeter

#: The STS vending key of the demo (the P2APST simulator's default: its tokens open here).
DEMO_VENDING_KEY = 0xABABABABABABABAB
DEMO_SUPPLY_GROUP = "123456"
DEMO_TARIFF_INDEX = "01"
DEMO_KEY_REVISION = 1
DEMO_KEY_TYPE = 2
DEMO_IIN = "600727"
DEMO_BASE_DATE = sts.BaseDate.Y2014
DEFAULT_HUB_MSISDN = "+6281100000000"  # the hub's modem, the one number meters talk to
DEFAULT_SHORT_CODE = "87000"  # the customers' access code (settings.short_code's default)
COMMS_KEY_ID = 1
SIM_OPERATOR = "Telkomsel"
RESPONSIBLE_PERSON = "PT Operator Data Demo"
_ADVANCE_STEP = timedelta(minutes=15)

#: The registry CSV's columns, in the order `pintar registry export` writes them
#: (operator_data/registry/csv_io.py; a test holds the two together).
REGISTRY_COLUMNS: tuple[str, ...] = (
    "customer_id", "customer_name", "tariff_segment", "power_va",
    "meter_number", "supply_group_code", "tariff_index", "key_revision", "key_type",
    "base_date", "meter_state", "comms_key_id", "comms_key_hex",
    "sim_msisdn", "sim_iccid", "sim_operator", "sim_m2m", "sim_responsible_person",
    "phone_msisdns",
)  # fmt: skip

_FIRST_NAMES = (
    "BUDI", "SITI", "AGUS", "DEWI", "I MADE", "RINA", "HENDRA", "SRI", "YUSUF", "NUR",
    "EKO", "WAHYU", "PUTU", "LINA", "ANDI", "RATNA", "JOKO", "FITRI", "BAMBANG", "MEGA",
)  # fmt: skip
_LAST_NAMES = (
    "SANTOSO", "RAHAYU", "WIJAYA", "LESTARI", "SUARTA", "HIDAYAT", "SETIAWAN", "PURNAMA",
    "SIREGAR", "NASUTION", "HARAHAP", "KUSUMA", "SAPUTRA", "WULANDARI", "PRATAMA", "SIMANJUNTAK",
)  # fmt: skip
# Power categories with rough household shares.
_POWERS = ((450, 2), (900, 5), (1300, 6), (2200, 4), (3500, 2), (5500, 1))


@dataclass(frozen=True, slots=True)
class FleetMember:
    identity: MeterIdentity
    customer_id: str
    customer_name: str
    tariff: str
    phone_msisdn: str
    pin: str
    sim_iccid: str
    initial_credit_kwh: Decimal

    @property
    def meter_number(self) -> str:
        return self.identity.meter_number


def comms_key(seed: int, meter_number: str) -> bytes:
    """The meter's 128-bit frame key: HMAC-SHA256(seed, meter number), first 16 bytes."""
    mac = hmac.new(f"lp-demo-comms:{seed}".encode(), meter_number.encode(), hashlib.sha256)
    return mac.digest()[:16]


def tariff_for(power_va: int) -> str:
    return "R1" if power_va <= 2200 else "R2" if power_va < 6600 else "R3"


def _unique(rng: random.Random, seen: set[str], make: str, digits: int) -> str:
    while True:
        value = make + "".join(rng.choice("0123456789") for _ in range(digits))
        if value not in seen:
            seen.add(value)
            return value


def build_members(
    count: int,
    seed: int,
    *,
    hub_msisdn: str = DEFAULT_HUB_MSISDN,
    vending_key: int = DEMO_VENDING_KEY,
) -> list[FleetMember]:
    if count < 0:
        raise ValueError("a fleet has zero or more meters")
    rng = random.Random(f"fleet:{seed}")
    seen: set[str] = {hub_msisdn}
    powers = [p for p, _ in _POWERS]
    weights = [w for _, w in _POWERS]
    members = []
    for _ in range(count):
        meter_number = _unique(rng, seen, "14", 9)
        power = rng.choices(powers, weights)[0]
        identity = MeterIdentity(
            meter_number=meter_number,
            msisdn=_unique(rng, seen, "+628591", 7),  # M2M SIM range
            hub_msisdn=hub_msisdn,
            power_va=power,
            key_data=sts.KeyData(
                DEMO_KEY_TYPE,
                DEMO_SUPPLY_GROUP,
                DEMO_TARIFF_INDEX,
                DEMO_KEY_REVISION,
                DEMO_IIN,
                meter_number,
            ),
            vending_key=vending_key,
            comms_keys={COMMS_KEY_ID: comms_key(seed, meter_number)},
            comms_key_id=COMMS_KEY_ID,
            base_date=DEMO_BASE_DATE,
        )
        members.append(
            FleetMember(
                identity=identity,
                customer_id=_unique(rng, seen, "51", 10),
                customer_name=f"{rng.choice(_FIRST_NAMES)} {rng.choice(_LAST_NAMES)}",
                tariff=tariff_for(power),
                phone_msisdn=_unique(rng, seen, "+62812", 8),
                pin=f"{rng.randrange(10_000):04d}",
                sim_iccid=_unique(rng, seen, "896210", 13),
                initial_credit_kwh=Decimal(rng.randrange(5, 60)),
            )
        )
    return members


def write_registry_csv(
    members: Iterable[FleetMember], out: TextIO, *, include_comms_keys: bool = True
) -> None:
    """The registry import file: one line per meter, its customer, SIM and phone. The comms
    key is included so the hub can talk to the simulated meters (a real export blanks it)."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(REGISTRY_COLUMNS)
    for m in members:
        key = m.identity.comms_keys[m.identity.comms_key_id]
        data = m.identity.key_data
        writer.writerow(
            (
                m.customer_id,
                m.customer_name,
                m.tariff,
                m.identity.power_va,
                m.meter_number,
                data.supply_group_code,
                data.tariff_index,
                data.key_revision_number,
                data.key_type,
                int(m.identity.base_date),
                "active",
                f"k{m.identity.comms_key_id}" if include_comms_keys else "",
                key.hex() if include_comms_keys else "",
                m.identity.msisdn,
                m.sim_iccid,
                SIM_OPERATOR,
                "true",
                RESPONSIBLE_PERSON,
                m.phone_msisdn,
            )
        )


def registry_csv(members: Iterable[FleetMember], *, include_comms_keys: bool = True) -> str:
    out = io.StringIO()
    write_registry_csv(members, out, include_comms_keys=include_comms_keys)
    return out.getvalue()


def pins(members: Iterable[FleetMember]) -> dict[str, str]:
    """Customer ID → PIN: the registry CSV carries no PINs, so the demo sets them from here."""
    return {m.customer_id: m.pin for m in members}


def sim_meters(members: Iterable[FleetMember]) -> list[SimMeter]:
    """The P2APST simulator's customer register for these members (same keys: the tokens
    it vends are accepted by the simulated meters)."""
    return [
        SimMeter(
            meter_number=m.meter_number,
            customer_id=m.customer_id,
            customer_name=m.customer_name,
            tariff=m.tariff,
            power_va=m.identity.power_va,
            key_data=m.identity.key_data,
            vending_key=m.identity.vending_key,
            base_date=m.identity.base_date,
        )
        for m in members
    ]


def p2apst_meters_json(members: Iterable[FleetMember]) -> list[dict[str, object]]:
    """The same register as the P2APST simulator's `--meters` JSON file (`load_meters`)."""
    return [
        {
            "meter_number": m.meter_number,
            "customer_id": m.customer_id,
            "customer_name": m.customer_name,
            "tariff": m.tariff,
            "power_va": m.identity.power_va,
            "sts": {
                "vending_key": f"{m.identity.vending_key:016x}",
                "key_type": m.identity.key_data.key_type,
                "supply_group_code": m.identity.key_data.supply_group_code,
                "tariff_index": m.identity.key_data.tariff_index,
                "key_revision_number": m.identity.key_data.key_revision_number,
                "iin": m.identity.key_data.iin,
                "base_date": int(m.identity.base_date),
            },
        }
        for m in members
    ]


class Fleet:
    """The members' meters and phones on one network, sharing one state store.

    `async with Fleet(members, network, store, clock=clock) as fleet:` attaches them all;
    `await fleet.advance(to)` runs a simulated stretch (the clock must be a SimClock)."""

    def __init__(
        self,
        members: Sequence[FleetMember],
        network: SmsNetwork,
        store: StateStore,
        *,
        clock: Clock,
        sleep: Sleep | None = None,
        short_code: str = DEFAULT_SHORT_CODE,
        seed: int = 0,
        behaviour: Behaviour | None = None,
        wire: Wire = Wire.BINARY,
        reporting_interval_min: int = 1440,
    ) -> None:
        self.members = list(members)
        self.network = network
        self.clock = clock
        meter_sleep: Sleep = sleep if sleep is not None else asyncio.sleep
        self.meters = [
            SimulatedMeter(
                m.identity,
                network,
                store,
                clock=clock,
                seed=seed,
                faults=MeterFaults(),
                wire=wire,
                initial_credit_kwh=m.initial_credit_kwh,
                reporting_interval_min=reporting_interval_min,
                sleep=meter_sleep,
            )
            for m in self.members
        ]
        self.phones = [
            SimulatedPhone(
                m.phone_msisdn,
                network,
                short_code=short_code,
                pin=m.pin,
                meter_number=m.meter_number,
                behaviour=behaviour,
                clock=clock,
            )
            for m in self.members
        ]
        self._by_meter = {m.meter_number: i for i, m in enumerate(self.members)}

    async def __aenter__(self) -> Fleet:
        self.attach()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for meter in self.meters:
            await meter.stop()
        self.detach()

    def attach(self) -> None:
        for meter in self.meters:
            meter.attach()
        for phone in self.phones:
            phone.attach()

    def detach(self) -> None:
        for meter in self.meters:
            meter.detach()
        for phone in self.phones:
            phone.detach()

    def meter(self, meter_number: str) -> SimulatedMeter:
        return self.meters[self._by_meter[meter_number]]

    def phone(self, meter_number: str) -> SimulatedPhone:
        return self.phones[self._by_meter[meter_number]]

    async def advance(self, to: datetime) -> None:
        """Move the simulated clock to `to`, every meter with it (in steps, so readings and
        alarms come out in time order across the fleet)."""
        if not isinstance(self.clock, SimClock):
            raise TypeError("advance needs a SimClock; in real time use start()")
        for meter in self.meters:
            await meter.tick(self.clock())
        while self.clock() < to:
            step = min(to, self.clock() + _ADVANCE_STEP)
            self.clock.set(step)
            for meter in self.meters:
                await meter.advance(step)

    def start(self, tick_s: float = 60.0) -> None:
        """Tick every meter in real time (the injected clock and sleep)."""
        for meter in self.meters:
            meter.start(tick_s)

    def ledger(self) -> LedgerReport:
        return check_ledger(self.phones, self.meters)
