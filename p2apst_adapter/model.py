"""What the link carries, as typed values: identities, purchases, results, token reports.

Both the client and the simulator build and read bit 48 through these, so the two sides
cannot drift apart.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from enum import StrEnum
from typing import Any

from p2apst_adapter.dialect import IsoError, ResponseCode

#: P2APST's wall clock is Western Indonesian Time (UTC+7, no daylight saving).
WIB = timezone(timedelta(hours=7), "WIB")
LOCAL_TIME_FORMAT = "%Y%m%d%H%M%S"

_REFERENCE = re.compile(r"[\x21-\x7e]{1,32}")


def local_time(moment: datetime) -> str:
    """Bit 12 / event-time text: WIB wall clock (naive datetimes are taken as WIB)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(WIB)
    return moment.strftime(LOCAL_TIME_FORMAT)


def parse_local_time(text: str) -> datetime:
    try:
        return datetime.strptime(text, LOCAL_TIME_FORMAT).replace(tzinfo=WIB)
    except ValueError:
        raise IsoError(f"{text!r} is not a YYYYMMDDhhmmss date-time") from None


@dataclass(frozen=True, slots=True)
class LinkIdentity:
    """Who we are on the link: bits 32, 33, 41 and the switcher ID in bit 48."""

    switcher_id: str = "3250001"  # 7 digits
    bank_code: str = "4510017"  # up to 7 digits
    terminal_id: str = "PINTAR0000000001"  # 16 characters


@dataclass(frozen=True, slots=True)
class InquiryResult:
    response_code: str
    meter_number: str
    customer_id: str
    pln_reference: str = ""
    switcher_reference: str = ""
    customer_name: str = ""
    tariff: str = ""
    power_va: int = 0
    admin_fee: Decimal = Decimal(0)
    private_data: dict[str, object] = field(default_factory=dict)  # bit 62 by name

    @property
    def found(self) -> bool:
        return self.response_code == ResponseCode.SUCCESS


@dataclass(frozen=True, slots=True)
class PurchaseRequest:
    """One prepaid purchase. `switcher_reference` is its idempotency key (≤ 32 printable
    ASCII characters, no spaces): the same key always means the same purchase."""

    switcher_reference: str
    meter_number: str
    amount: Decimal  # rupiah, what the customer pays including the admin fee
    customer_id: str = "0" * 12
    pln_reference: str = ""
    customer_name: str = ""
    tariff: str = ""
    power_va: int = 0
    admin_fee: Decimal = Decimal(0)
    buying_option: str = "0"
    flag: str = "0"  # 0 = by meter number, 1 = by customer ID

    def __post_init__(self) -> None:
        if not _REFERENCE.fullmatch(self.switcher_reference):
            raise ValueError(
                "switcher_reference must be 1-32 printable ASCII characters without spaces, "
                f"got {self.switcher_reference!r}"
            )
        if not self.amount.is_finite() or self.amount <= 0:
            raise ValueError(f"amount must be positive, got {self.amount}")

    @classmethod
    def from_inquiry(
        cls, inquiry: InquiryResult, amount: Decimal, switcher_reference: str | None = None
    ) -> PurchaseRequest:
        return cls(
            switcher_reference=switcher_reference or inquiry.switcher_reference,
            meter_number=inquiry.meter_number,
            amount=amount,
            customer_id=inquiry.customer_id,
            pln_reference=inquiry.pln_reference,
            customer_name=inquiry.customer_name,
            tariff=inquiry.tariff,
            power_va=inquiry.power_va,
            admin_fee=inquiry.admin_fee,
        )

    def to_json(self) -> dict[str, Any]:
        return {k: str(v) if isinstance(v, Decimal) else v for k, v in asdict(self).items()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PurchaseRequest:
        return cls(
            **{
                **data,
                "amount": Decimal(data["amount"]),
                "admin_fee": Decimal(data["admin_fee"]),
            }
        )


class PurchaseState(StrEnum):
    PENDING = "pending"  # recorded; the 2200 may or may not have left
    PAID = "paid"  # answered 0000: the token is in the result
    DECLINED = "declined"  # answered with an error: no money taken, no token


@dataclass(frozen=True, slots=True)
class PurchaseResult:
    switcher_reference: str
    response_code: str
    token: str | None = None
    kwh: Decimal | None = None
    vending_receipt: str = ""
    pln_reference: str = ""
    customer_name: str = ""
    power_purchase: Decimal | None = None
    admin_fee: Decimal | None = None
    stamp_duty: Decimal | None = None
    vat: Decimal | None = None
    ppj: Decimal | None = None
    instalment: Decimal | None = None
    info_text: str = ""  # bit 63
    via_advice: bool = False  # the answer came from an advice, not the 2210

    @property
    def state(self) -> PurchaseState:
        return PurchaseState.PAID if self.token is not None else PurchaseState.DECLINED

    @property
    def paid(self) -> bool:
        return self.state is PurchaseState.PAID

    def to_json(self) -> dict[str, Any]:
        return {k: str(v) if isinstance(v, Decimal) else v for k, v in asdict(self).items()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PurchaseResult:
        money = ("kwh", "power_purchase", "admin_fee", "stamp_duty", "vat", "ppj", "instalment")
        converted: dict[str, Any] = {
            k: (Decimal(v) if k in money and v is not None else v) for k, v in data.items()
        }
        return cls(**converted)


class TokenReason(StrEnum):
    """Why a meter accepted or rejected a token (bit 48 `reason` of a token report)."""

    ACCEPTED = "00"
    INVALID = "01"  # CRC failed: wrong key or mistyped
    USED = "02"  # TID already accepted
    OLD = "03"  # TID older than the oldest remembered
    KEY_EXPIRED = "04"  # key revision / base date no longer valid
    OTHER = "99"


@dataclass(frozen=True, slots=True)
class TokenReport:
    """A meter's TOKEN_RESULT, reported to P2APST (2620). `report_id` is its idempotency key."""

    report_id: str
    meter_number: str
    switcher_reference: str
    token: str
    accepted: bool
    reason: TokenReason
    event_time: datetime  # the meter's clock
    credit_kwh: Decimal  # credit register after the token, as the meter reported it

    def __post_init__(self) -> None:
        if not _REFERENCE.fullmatch(self.report_id):
            raise ValueError(f"report_id must be 1-32 printable characters, got {self.report_id!r}")

    def to_json(self) -> dict[str, Any]:
        return {
            "report_id": self.report_id,
            "meter_number": self.meter_number,
            "switcher_reference": self.switcher_reference,
            "token": self.token,
            "accepted": self.accepted,
            "reason": str(self.reason),
            "event_time": self.event_time.isoformat(),
            "credit_kwh": str(self.credit_kwh),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TokenReport:
        return cls(
            report_id=data["report_id"],
            meter_number=data["meter_number"],
            switcher_reference=data["switcher_reference"],
            token=data["token"],
            accepted=bool(data["accepted"]),
            reason=TokenReason(data["reason"]),
            event_time=datetime.fromisoformat(data["event_time"]),
            credit_kwh=Decimal(data["credit_kwh"]),
        )
