"""What the registry hands out: frozen records, validated identifiers, typed PIN results."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy.engine import Row

from firmware_protocol.sts import BaseDate, StsError
from operator_data.store.states import MeterState, SimSwapState


class RegistryError(ValueError):
    """A registry request that cannot be carried out; the message says which field/why."""


class Conflict(RegistryError):
    """The request clashes with what is registered (duplicate, already bound, ...)."""


class CustomerStatus(StrEnum):
    ACTIVE = "active"
    INACTIVE = "inactive"


def check_customer_id(value: str) -> str:
    if not re.fullmatch(r"[0-9]{12}", value):
        raise RegistryError(f"customer_id must be 12 digits, got {value!r}")
    return value


def check_meter_number(value: str) -> str:
    if not re.fullmatch(r"[0-9]{11}", value):
        raise RegistryError(f"meter_number must be 11 digits, got {value!r}")
    return value


def check_iccid(value: str) -> str:
    # ITU-T E.118: 89 (telecom) + up to 20 digits in all, 19-20 in practice.
    if not re.fullmatch(r"89[0-9]{16,20}", value):
        raise RegistryError(f"iccid must be 18-22 digits starting with 89, got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class CustomerIn:
    customer_id: str
    name: str
    tariff_segment: str
    power_va: int

    def __post_init__(self) -> None:
        check_customer_id(self.customer_id)
        if not self.name.strip() or len(self.name) > 200:
            raise RegistryError("name must be 1-200 characters")
        if not re.fullmatch(r"[A-Z0-9/-]{1,16}", self.tariff_segment):
            raise RegistryError(
                f"tariff_segment must be 1-16 of A-Z 0-9 / -, got {self.tariff_segment!r}"
            )
        if not 0 < self.power_va <= 10_000_000:
            raise RegistryError(f"power_va must be a positive VA rating, got {self.power_va}")


@dataclass(frozen=True, slots=True)
class Customer:
    customer_id: str
    name: str
    tariff_segment: str
    power_va: int
    status: CustomerStatus
    opted_out: bool
    opted_out_at: datetime | None
    inactive_since: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Row[Any]) -> Customer:
        m = row._mapping
        return cls(
            customer_id=m["customer_id"],
            name=m["name"],
            tariff_segment=m["tariff_segment"],
            power_va=m["power_va"],
            status=CustomerStatus(m["status"]),
            opted_out=bool(m["opted_out"]),
            opted_out_at=m["opted_out_at"],
            inactive_since=m["inactive_since"],
            created_at=m["created_at"],
            updated_at=m["updated_at"],
        )


@dataclass(frozen=True, slots=True)
class MeterIn:
    meter_number: str
    customer_id: str
    supply_group_code: str
    tariff_index: str
    key_revision: int
    key_type: int
    base_date: int = 1993

    def __post_init__(self) -> None:
        check_meter_number(self.meter_number)
        check_customer_id(self.customer_id)
        if not re.fullmatch(r"[0-9]{6}", self.supply_group_code):
            raise RegistryError(
                f"supply_group_code must be 6 digits, got {self.supply_group_code!r}"
            )
        if not re.fullmatch(r"[0-9]{2}", self.tariff_index):
            raise RegistryError(f"tariff_index must be 2 digits, got {self.tariff_index!r}")
        if not 1 <= self.key_revision <= 9:
            raise RegistryError(f"key_revision must be 1-9, got {self.key_revision}")
        if not 0 <= self.key_type <= 9:
            raise RegistryError(f"key_type must be 0-9, got {self.key_type}")
        try:
            BaseDate.parse(self.base_date)
        except StsError as error:
            raise RegistryError(str(error)) from None


@dataclass(frozen=True, slots=True)
class Meter:
    meter_number: str
    customer_id: str
    supply_group_code: str
    tariff_index: str
    key_revision: int
    key_type: int
    base_date: int
    has_comms_key: bool
    comms_key_id: str | None
    tx_counter: int
    rx_counter: int
    state: MeterState
    state_at: datetime
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Row[Any]) -> Meter:
        m = row._mapping
        return cls(
            meter_number=m["meter_number"],
            customer_id=m["customer_id"],
            supply_group_code=m["supply_group_code"],
            tariff_index=m["tariff_index"],
            key_revision=m["key_revision"],
            key_type=m["key_type"],
            base_date=m["base_date"],
            has_comms_key=m["comms_key_sealed"] is not None,
            comms_key_id=m["comms_key_id"],
            tx_counter=m["tx_counter"],
            rx_counter=m["rx_counter"],
            state=MeterState(m["state"]),
            state_at=m["state_at"],
            created_at=m["created_at"],
            updated_at=m["updated_at"],
        )


@dataclass(frozen=True, slots=True)
class CommsKey:
    """A meter's SMS-frame key in clear; obtained only through Registry.comms_key()."""

    meter_number: str
    key_id: str
    key: bytes

    def __repr__(self) -> str:  # never print the key
        return f"CommsKey(meter_number={self.meter_number!r}, key_id={self.key_id!r})"


@dataclass(frozen=True, slots=True)
class FrameCounters:
    tx_counter: int
    rx_counter: int
    replay_window: bytes


@dataclass(frozen=True, slots=True)
class SimIn:
    msisdn: str
    iccid: str
    operator: str
    responsible_person: str
    m2m: bool = True


@dataclass(frozen=True, slots=True)
class Sim:
    sim_id: int
    msisdn: str
    iccid: str
    operator: str
    m2m: bool
    responsible_person: str
    meter_number: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Row[Any]) -> Sim:
        m = row._mapping
        return cls(
            sim_id=m["sim_id"],
            msisdn=m["msisdn"],
            iccid=m["iccid"],
            operator=m["operator"],
            m2m=bool(m["m2m"]),
            responsible_person=m["responsible_person"],
            meter_number=m["meter_number"],
            created_at=m["created_at"],
            updated_at=m["updated_at"],
        )


@dataclass(frozen=True, slots=True)
class SimSwap:
    swap_id: int
    meter_number: str
    old_sim_id: int | None
    new_sim_id: int
    state: SimSwapState
    reason: str | None
    requested_by: str
    requested_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    decision_note: str | None

    @classmethod
    def from_row(cls, row: Row[Any]) -> SimSwap:
        m = row._mapping
        return cls(
            swap_id=m["swap_id"],
            meter_number=m["meter_number"],
            old_sim_id=m["old_sim_id"],
            new_sim_id=m["new_sim_id"],
            state=SimSwapState(m["state"]),
            reason=m["reason"],
            requested_by=m["requested_by"],
            requested_at=m["requested_at"],
            decided_by=m["decided_by"],
            decided_at=m["decided_at"],
            decision_note=m["decision_note"],
        )


@dataclass(frozen=True, slots=True)
class Phone:
    msisdn: str
    customer_id: str
    pin_set: bool
    failed_attempts: int
    locked_until: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Row[Any]) -> Phone:
        m = row._mapping
        return cls(
            msisdn=m["msisdn"],
            customer_id=m["customer_id"],
            pin_set=m["pin_hash"] is not None,
            failed_attempts=m["failed_attempts"],
            locked_until=m["locked_until"],
            created_at=m["created_at"],
            updated_at=m["updated_at"],
        )


@dataclass(frozen=True, slots=True)
class PinOk:
    pass


@dataclass(frozen=True, slots=True)
class PinWrong:
    attempts_left: int


@dataclass(frozen=True, slots=True)
class PinLocked:
    until: datetime
    # What the guess that locked it learns (not part of the verdict's identity): the
    # lock-outs in a row, this one included, and that this guess locked the phone.
    lockouts: int = field(default=0, compare=False)
    just_locked: bool = field(default=False, compare=False)


PinResult = PinOk | PinWrong | PinLocked


@dataclass(frozen=True, slots=True)
class SenderMeter:
    """An SMS sender that is a meter's bound SIM."""

    meter_number: str
    customer_id: str


@dataclass(frozen=True, slots=True)
class SenderCustomer:
    """An SMS sender that is a customer's registered phone."""

    customer_id: str
    msisdn: str


Sender = SenderMeter | SenderCustomer


@dataclass(frozen=True, slots=True)
class Identified:
    """A sender as the inbound path needs it: who, and for a meter its usable comms key
    (or why there is none)."""

    sender: Sender
    key: CommsKey | None = None
    key_problem: str | None = None
