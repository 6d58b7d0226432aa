"""What a phone received, and what the hub's texts mean to a customer.

The phone reads the texts the way a customer does: it looks for the reference, the token and
the kWh. The patterns follow the hub's reply templates in Bahasa Indonesia and English.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import Enum


@dataclass(frozen=True, slots=True)
class InboxSms:
    received_at: datetime
    sender: str
    text: str


class NoticeKind(Enum):
    PURCHASE_ACCEPTED = "purchase-accepted"
    PURCHASE_DUPLICATE = "purchase-duplicate"
    PURCHASE_FAILED = "purchase-failed"
    RECEIPT = "receipt"
    TOKEN_REJECTED = "token-rejected"
    WRONG_PIN = "wrong-pin"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class Notice:
    kind: NoticeKind
    ref: str | None = None
    token: str | None = None  # 20 digits, separators removed
    meter: str | None = None
    kwh: Decimal | None = None


_REF = r"[Rr]ef (?P<ref>[A-Za-z0-9-]+?)"
_PATTERNS: tuple[tuple[NoticeKind, re.Pattern[str]], ...] = (
    (
        NoticeKind.RECEIPT,
        re.compile(
            r"^Token Rp[0-9.]+ (?:masuk ke|applied to) meter (?P<meter>[0-9]{11}): "
            r"\+(?P<kwh>[0-9.]+) kWh.*?" + _REF + r"\. Token (?P<token>[0-9][0-9 -]*[0-9])"
        ),
    ),
    (
        NoticeKind.PURCHASE_ACCEPTED,
        re.compile(r"^(?:Pembelian|Purchase of) Rp.*?\(" + _REF + r"\)"),
    ),
    (
        NoticeKind.PURCHASE_DUPLICATE,
        re.compile(r"(?:sudah diterima|already received) \(" + _REF + r"\)"),
    ),
    (
        NoticeKind.PURCHASE_FAILED,
        re.compile(r"^(?:Pembelian|Purchase of) Rp[0-9.]+ (?:gagal|failed)"),
    ),
    (
        NoticeKind.TOKEN_REJECTED,
        re.compile(r"(?:ditolak meter|refused the token) .*?" + _REF + r"[.,]"),
    ),
    (NoticeKind.WRONG_PIN, re.compile(r"^(?:PIN salah|Wrong PIN)")),
)


def read_notice(text: str) -> Notice:
    for kind, pattern in _PATTERNS:
        match = pattern.search(text)
        if match is None:
            continue
        groups = match.groupdict()
        token = re.sub(r"[^0-9]", "", groups["token"]) if groups.get("token") else None
        kwh = Decimal(groups["kwh"]) if groups.get("kwh") else None
        return Notice(kind, groups.get("ref"), token, groups.get("meter"), kwh)
    return Notice(NoticeKind.OTHER)
