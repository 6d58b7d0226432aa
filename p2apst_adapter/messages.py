"""Builds and reads the link's messages from the typed values in `model`.

The client and the simulator share these so that both sides use one layout table.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal

from p2apst_adapter.dialect import (
    AMOUNT,
    CURRENCY_IDR,
    INQUIRY_REQUEST,
    INQUIRY_RESPONSE,
    MERCHANT_CATEGORY,
    ORIGINAL_DATA,
    P2APST,
    PRIVATE_DATA_2,
    PURCHASE_REQUEST,
    PURCHASE_RESPONSE,
    TOKEN_REPORT,
    Dialect,
    IsoError,
    IsoMessage,
    Layout,
    Mti,
    NetworkCode,
    ProductCode,
    ResponseCode,
)
from p2apst_adapter.model import (
    InquiryResult,
    LinkIdentity,
    PurchaseRequest,
    PurchaseResult,
    TokenReason,
    TokenReport,
    local_time,
    parse_local_time,
)


def _layout(dialect: Dialect, shipped: Layout) -> Layout:
    """`dialect`'s layout of the same name as the shipped `shipped` (a switcher's dialect
    file may change a layout's sub-fields, never its name or what it is for)."""
    return shipped if dialect is P2APST else dialect.layout(shipped.name)


#: Fields a response copies from its request.
ECHOED_BITS = (2, 4, 11, 12, 26, 32, 33, 41, 48, 56)


def amount_field(amount: Decimal) -> str:
    return AMOUNT.encode({"currency": CURRENCY_IDR, "amount": amount})


def amount_of(message: IsoMessage) -> Decimal:
    value = AMOUNT.decode(message.require(4))["amount"]
    assert isinstance(value, Decimal)
    return value


def _common(identity: LinkIdentity, stan: str, when: datetime) -> dict[int, str]:
    return {
        11: stan,
        12: local_time(when),
        26: MERCHANT_CATEGORY,
        32: identity.bank_code,
        33: identity.switcher_id,
        41: identity.terminal_id,
    }


def network_request(code: NetworkCode, stan: str, when: datetime) -> IsoMessage:
    return IsoMessage(Mti.NETWORK_REQUEST, {11: stan, 12: local_time(when), 70: code})


def inquiry_request(
    identity: LinkIdentity,
    stan: str,
    when: datetime,
    *,
    meter_number: str | None = None,
    customer_id: str | None = None,
    dialect: Dialect = P2APST,
) -> IsoMessage:
    if (meter_number is None) == (customer_id is None):
        raise ValueError("look a customer up by meter_number or by customer_id, not both")
    bit48 = _layout(dialect, INQUIRY_REQUEST).encode(
        {
            "switcher_id": identity.switcher_id,
            "meter_number": meter_number or "0",
            "customer_id": customer_id or "0",
            "flag": "0" if meter_number is not None else "1",
        }
    )
    fields = {2: ProductCode.PREPAID.value, **_common(identity, stan, when), 48: bit48}
    return IsoMessage(Mti.INQUIRY_REQUEST, fields)


def purchase_bit48(
    identity: LinkIdentity, request: PurchaseRequest, dialect: Dialect = P2APST
) -> str:
    return _layout(dialect, PURCHASE_REQUEST).encode(
        {
            "switcher_id": identity.switcher_id,
            "meter_number": request.meter_number,
            "customer_id": request.customer_id,
            "flag": request.flag,
            "pln_reference": request.pln_reference,
            "switcher_reference": request.switcher_reference,
            "customer_name": request.customer_name,
            "tariff": request.tariff,
            "power_va": request.power_va,
            "admin_fee": request.admin_fee,
            "buying_option": request.buying_option,
        }
    )


def purchase_request(
    identity: LinkIdentity,
    request: PurchaseRequest,
    stan: str,
    when: datetime,
    dialect: Dialect = P2APST,
) -> IsoMessage:
    fields = {
        2: ProductCode.PREPAID.value,
        4: amount_field(request.amount),
        **_common(identity, stan, when),
        48: purchase_bit48(identity, request, dialect),
    }
    return IsoMessage(Mti.PURCHASE_REQUEST, fields)


def advice(
    identity: LinkIdentity,
    request: PurchaseRequest,
    *,
    repeat: bool,
    stan: str,
    when: datetime,
    original_stan: str,
    original_time: datetime,
    dialect: Dialect = P2APST,
) -> IsoMessage:
    """2220 (or 2221): "give me the result of this purchase"; bit 56 names the 2200."""
    message = purchase_request(identity, request, stan, when, dialect)
    bit56 = _layout(dialect, ORIGINAL_DATA).encode(
        {
            "original_mti": Mti.PURCHASE_REQUEST.value,
            "original_stan": original_stan,
            "original_datetime": local_time(original_time),
            "original_bank_code": identity.bank_code,
        }
    )
    mti = Mti.ADVICE_REPEAT if repeat else Mti.ADVICE
    return message.with_fields(mti, f56=bit56)


def token_report(
    identity: LinkIdentity,
    report: TokenReport,
    *,
    repeat: bool,
    stan: str,
    when: datetime,
    dialect: Dialect = P2APST,
) -> IsoMessage:
    bit48 = _layout(dialect, TOKEN_REPORT).encode(
        {
            "switcher_id": identity.switcher_id,
            "meter_number": report.meter_number,
            "report_id": report.report_id,
            "switcher_reference": report.switcher_reference,
            "token": report.token,
            "accepted": "1" if report.accepted else "0",
            "reason": report.reason.value,
            "event_time": local_time(report.event_time),
            "credit_kwh": report.credit_kwh,
        }
    )
    mti = Mti.REPORT_ADVICE_REPEAT if repeat else Mti.REPORT_ADVICE
    return IsoMessage(
        mti, {2: ProductCode.PREPAID.value, **_common(identity, stan, when), 48: bit48}
    )


def read_token_report(values: Mapping[str, object]) -> TokenReport:
    return TokenReport(
        report_id=str(values["report_id"]),
        meter_number=str(values["meter_number"]),
        switcher_reference=str(values["switcher_reference"]),
        token=str(values["token"]),
        accepted=values["accepted"] == "1",
        reason=_reason(str(values["reason"])),
        event_time=parse_local_time(str(values["event_time"])),
        credit_kwh=_decimal(values["credit_kwh"]),
    )


def _reason(code: str) -> TokenReason:
    try:
        return TokenReason(code)
    except ValueError:
        return TokenReason.OTHER


def response(request: IsoMessage, code: str, **fields: str | None) -> IsoMessage:
    """The answer to `request`: its MTI + 10, the echoed fields, bit 39 and `fields`."""
    echoed = {bit: request.fields[bit] for bit in ECHOED_BITS if bit in request.fields}
    if 70 in request.fields:
        echoed[70] = request.fields[70]
    message = IsoMessage(Mti(request.mti).response(), echoed)
    return message.with_fields(f39=code, **fields)


def _decimal(value: object) -> Decimal:
    if not isinstance(value, Decimal):
        raise IsoError(f"expected an amount, got {value!r}")
    return value


def read_inquiry_response(message: IsoMessage, dialect: Dialect = P2APST) -> InquiryResult:
    bit48 = message.get(48) or ""
    code = message.response_code or ResponseCode.OTHER_ERROR
    layout = dialect.bit48_layout(message.mti, bit48) if bit48 else None
    values = layout.decode(bit48) if layout is not None else {}
    private_data = _layout(dialect, PRIVATE_DATA_2)
    private = private_data.decode(message.fields[62]) if 62 in message.fields else {}
    if layout is None or layout.name != INQUIRY_RESPONSE.name:
        return InquiryResult(
            code, str(values.get("meter_number", "")), str(values.get("customer_id", ""))
        )
    power = values["power_va"]
    assert isinstance(power, int)
    return InquiryResult(
        response_code=code,
        meter_number=str(values["meter_number"]),
        customer_id=str(values["customer_id"]),
        pln_reference=str(values["pln_reference"]),
        switcher_reference=str(values["switcher_reference"]),
        customer_name=str(values["customer_name"]),
        tariff=str(values["tariff"]),
        power_va=power,
        admin_fee=_decimal(values["admin_fee"]),
        private_data=private,
    )


def read_purchase_response(
    message: IsoMessage,
    request: PurchaseRequest,
    *,
    via_advice: bool,
    dialect: Dialect = P2APST,
) -> PurchaseResult:
    """The result a 2210/2230/2231 carries; a token only with code 0000 and the full layout."""
    code = message.response_code or ResponseCode.OTHER_ERROR
    bit48 = message.get(48) or ""
    info = (message.get(63) or "").strip()
    layout = dialect.bit48_layout(message.mti, bit48) if bit48 else None
    if code != ResponseCode.SUCCESS or layout is None or layout.name != PURCHASE_RESPONSE.name:
        if code == ResponseCode.SUCCESS:
            raise IsoError(f"{message.mti} 0000 without a purchase-response bit 48", field="48")
        return PurchaseResult(
            request.switcher_reference, code, info_text=info, via_advice=via_advice
        )
    values = layout.decode(bit48)
    if values["switcher_reference"] != request.switcher_reference:
        raise IsoError(
            f"answer is for switcher reference {values['switcher_reference']!r}, "
            f"not {request.switcher_reference!r}",
            field="48.switcher_reference",
        )
    return PurchaseResult(
        switcher_reference=request.switcher_reference,
        response_code=code,
        token=str(values["token"]),
        kwh=_decimal(values["kwh"]),
        vending_receipt=str(values["vending_receipt"]),
        pln_reference=str(values["pln_reference"]),
        customer_name=str(values["customer_name"]),
        power_purchase=_decimal(values["power_purchase"]),
        admin_fee=_decimal(values["admin_fee"]),
        stamp_duty=_decimal(values["stamp_duty"]),
        vat=_decimal(values["vat"]),
        ppj=_decimal(values["ppj"]),
        instalment=_decimal(values["instalment"]),
        info_text=info,
        via_advice=via_advice,
    )


__all__ = [
    "ECHOED_BITS",
    "PRIVATE_DATA_2",
    "advice",
    "amount_field",
    "amount_of",
    "inquiry_request",
    "network_request",
    "purchase_bit48",
    "purchase_request",
    "read_inquiry_response",
    "read_purchase_response",
    "read_token_report",
    "response",
    "token_report",
]
