"""Bit 39 response codes: meaning, whether a purchase with this answer may be retried, and
the short Indonesian text a customer sees (only for codes that can reach a customer)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum


class ResponseCode(StrEnum):
    SUCCESS = "0000"
    OTHER_ERROR = "0005"
    PARTNER_BLOCKED = "0006"
    INVALID_ACCESS_TIME = "0008"
    INACTIVE_ACCOUNT = "0009"
    SIGN_ON_NEEDED = "0011"
    INVALID_AMOUNT = "0013"
    UNKNOWN_CUSTOMER = "0014"
    UNKNOWN_METER = "0015"
    CUSTOMER_BLOCKED = "0016"
    INVALID_MESSAGE = "0030"
    UNREGISTERED_BANK = "0031"
    UNREGISTERED_PARTNER = "0032"
    UNREGISTERED_PRODUCT = "0033"
    BELOW_MINIMUM = "0041"
    ABOVE_MAXIMUM = "0042"
    INVALID_ADMIN_CHARGE = "0045"
    INSUFFICIENT_DEPOSIT = "0046"
    KWH_OVER_MAXIMUM = "0047"
    NO_PAYMENT = "0063"
    TIMEOUT = "0068"
    CUSTOMER_SUSPENDED = "0077"
    ALREADY_PAID = "0088"
    CUT_OFF = "0090"
    REFERENCE_NOT_AVAILABLE = "0092"
    INVALID_SWITCHER_REFERENCE = "0093"
    REVERSAL_DONE = "0094"
    ID_MISMATCH = "0097"
    INVALID_PLN_REFERENCE = "0098"


@dataclass(frozen=True, slots=True)
class CodeInfo:
    code: str
    meaning: str
    customer_text: str | None  # None: internal to the partner link, never shown as is


_GENERIC = "Transaksi gagal karena gangguan sistem. Silakan coba lagi nanti."
_RC = ResponseCode

_ROWS: tuple[CodeInfo, ...] = (
    CodeInfo(_RC.SUCCESS, "success", "Transaksi berhasil."),
    CodeInfo(_RC.OTHER_ERROR, "other error", _GENERIC),
    CodeInfo(_RC.PARTNER_BLOCKED, "partner blocked", None),
    CodeInfo(
        _RC.INVALID_ACCESS_TIME,
        "invalid access time",
        "Pembelian tidak dapat dilakukan saat ini. Silakan coba beberapa saat lagi.",
    ),
    CodeInfo(_RC.INACTIVE_ACCOUNT, "inactive account", None),
    CodeInfo(_RC.SIGN_ON_NEEDED, "sign-on needed", None),
    CodeInfo(_RC.INVALID_AMOUNT, "invalid amount", "Nominal pembelian tidak valid."),
    CodeInfo(_RC.UNKNOWN_CUSTOMER, "unknown customer ID", "ID pelanggan tidak terdaftar di PLN."),
    CodeInfo(_RC.UNKNOWN_METER, "unknown meter", "Nomor meter tidak terdaftar di PLN."),
    CodeInfo(
        _RC.CUSTOMER_BLOCKED,
        "customer blocked",
        "Pelanggan diblokir. Silakan hubungi PLN 123.",
    ),
    CodeInfo(_RC.INVALID_MESSAGE, "invalid message", None),
    CodeInfo(_RC.UNREGISTERED_BANK, "unregistered bank code", None),
    CodeInfo(_RC.UNREGISTERED_PARTNER, "unregistered partner", None),
    CodeInfo(_RC.UNREGISTERED_PRODUCT, "unregistered product", None),
    CodeInfo(
        _RC.BELOW_MINIMUM, "below minimum purchase", "Nominal pembelian di bawah batas minimum."
    ),
    CodeInfo(
        _RC.ABOVE_MAXIMUM, "above maximum purchase", "Nominal pembelian melebihi batas maksimum."
    ),
    CodeInfo(_RC.INVALID_ADMIN_CHARGE, "invalid admin charge", None),
    CodeInfo(_RC.INSUFFICIENT_DEPOSIT, "insufficient deposit", None),
    CodeInfo(
        _RC.KWH_OVER_MAXIMUM,
        "total kWh over the maximum",
        "Jumlah kWh melebihi batas maksimum pembelian.",
    ),
    CodeInfo(_RC.NO_PAYMENT, "no payment to reverse", None),
    CodeInfo(
        _RC.TIMEOUT,
        "timeout",
        "Transaksi sedang diproses. Token akan dikirim setelah transaksi selesai.",
    ),
    CodeInfo(
        _RC.CUSTOMER_SUSPENDED,
        "customer suspended / blocked",
        "Pelanggan sedang dalam status blokir. Silakan hubungi PLN 123.",
    ),
    CodeInfo(
        _RC.ALREADY_PAID,
        "already paid",
        "Transaksi ini sudah dibayar. Token akan dikirim ulang.",
    ),
    CodeInfo(
        _RC.CUT_OFF,
        "cut-off in progress",
        "Sedang proses tutup buku PLN. Silakan coba beberapa saat lagi.",
    ),
    CodeInfo(_RC.REFERENCE_NOT_AVAILABLE, "switcher reference not available", None),
    CodeInfo(_RC.INVALID_SWITCHER_REFERENCE, "invalid switcher reference", None),
    CodeInfo(_RC.REVERSAL_DONE, "reversal already done", None),
    CodeInfo(_RC.ID_MISMATCH, "switcher ID / bank code mismatch", None),
    CodeInfo(_RC.INVALID_PLN_REFERENCE, "invalid PLN reference", None),
)

RESPONSE_CODES: Mapping[str, CodeInfo] = {row.code: row for row in _ROWS}


def describe(code: str) -> CodeInfo:
    """The row for `code`; an unknown code reads as an undocumented error."""
    return RESPONSE_CODES.get(code) or CodeInfo(code, "undocumented response code", None)


def customer_text(code: str) -> str:
    """What a customer is told; internal codes fall back to a generic apology."""
    return describe(code).customer_text or _GENERIC
