"""How values look in customer SMS: rupiah with dots, kWh with one decimal, WIB times."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

WIB = timezone(timedelta(hours=7), "WIB")


def rupiah(amount: int) -> str:
    return f"{amount:,}".replace(",", ".")


def kwh(value: Decimal | str | None) -> str:
    if value is None:
        return "-"
    return f"{Decimal(value):.1f}"


def wib(moment: datetime) -> str:
    return moment.astimezone(WIB).strftime("%d-%m %H:%M")


def token_groups(token: str) -> str:
    return "-".join(token[i : i + 4] for i in range(0, 20, 4))


def masked_groups(token: str) -> str:
    return f"{token[:4]}-****-****-****-{token[-4:]}"


def short_ref(transaction_id: str) -> str:
    """The 12-character reference customers quote (the random tail of the ULID)."""
    return transaction_id[-12:]


def denominations(amounts: list[int]) -> str:
    def one(amount: int) -> str:
        if amount % 1_000_000 == 0:
            return f"{amount // 1_000_000}jt"
        if amount % 1000 == 0:
            return f"{amount // 1000}rb"
        return str(amount)

    return " ".join(one(a) for a in amounts)
