"""How much electricity a payment buys: a simplified PLN tariff table.

Real tariffs change every quarter; these are plausible 2024 figures, enough to make the
receipt's components add up and the token's kWh follow from the money.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

from firmware_protocol import sts

#: Rupiah per kWh by tariff segment (and power for the subsidised R1 900 VA).
PRICE_PER_KWH: dict[str, Decimal] = {
    "R1/900": Decimal("1352.00"),
    "R1": Decimal("1444.70"),
    "R2": Decimal("1699.53"),
    "R3": Decimal("1699.53"),
    "B1": Decimal("1444.70"),
}
#: Street-lighting tax (PPJ), a share of the electricity price; regional, 3% here.
PPJ_RATE = Decimal("0.03")


@dataclass(frozen=True, slots=True)
class Breakdown:
    admin_fee: Decimal
    stamp_duty: Decimal
    vat: Decimal
    ppj: Decimal
    instalment: Decimal
    power_purchase: Decimal
    kwh: Decimal  # what the token delivers (STS rounds up to a representable amount)


def price(tariff: str, power_va: int) -> Decimal:
    key = f"{tariff}/{power_va}"
    return PRICE_PER_KWH.get(key) or PRICE_PER_KWH.get(tariff) or PRICE_PER_KWH["R1"]


def breakdown(amount: Decimal, admin_fee: Decimal, tariff: str, power_va: int) -> Breakdown:
    """Splits what the customer paid: admin fee, then electricity + PPJ on it."""
    net = amount - admin_fee
    power = (net / (1 + PPJ_RATE)).quantize(Decimal(1), rounding=ROUND_DOWN)
    kwh = (power / price(tariff, power_va)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return Breakdown(
        admin_fee=admin_fee,
        stamp_duty=Decimal(0),
        vat=Decimal(0),
        ppj=net - power,
        instalment=Decimal(0),
        power_purchase=power,
        kwh=sts.round_kwh(kwh).quantize(Decimal("0.01")),
    )
