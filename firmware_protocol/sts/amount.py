"""The 16-bit STS amount field: a 2-bit exponent and a 14-bit mantissa, in tenths of a kWh.

value = 10**e * m + sum(2**14 * 10**(n-1) for n in 1..e). Encoding picks the smallest e
that can hold the amount and rounds the mantissa *up*, so a customer never receives less
than was paid for.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal

from firmware_protocol.sts.errors import StsError

_MANTISSA_BITS = 14
_MANTISSA_MAX = (1 << _MANTISSA_BITS) - 1


_SCALES = (1, 10, 100, 1000)
_OFFSETS = tuple(
    sum((1 << _MANTISSA_BITS) * _SCALES[n - 1] for n in range(1, e + 1)) for e in range(4)
)
_MAXIMA = tuple(_SCALES[e] * _MANTISSA_MAX + _OFFSETS[e] for e in range(4))

#: The largest amount a token can carry, in tenths of a kWh.
MAX_TENTHS = _MAXIMA[3]


def field_to_tenths(field: int) -> int:
    if not 0 <= field <= 0xFFFF:
        raise StsError(f"amount field {field} does not fit 16 bits")
    exponent, mantissa = field >> _MANTISSA_BITS, field & _MANTISSA_MAX
    return _SCALES[exponent] * mantissa + _OFFSETS[exponent]


def tenths_to_field(tenths: int) -> int:
    """Encodes an amount in tenths of a kWh, rounding up to the next representable amount."""
    if tenths < 0:
        raise StsError(f"amount {tenths} tenths of a kWh is negative")
    for exponent in range(4):
        if tenths <= _MAXIMA[exponent]:
            scale = _SCALES[exponent]
            above = max(tenths - _OFFSETS[exponent], 0)
            mantissa = -(-above // scale)
            return exponent << _MANTISSA_BITS | mantissa
    raise StsError(
        f"amount {Decimal(tenths) / 10} kWh is above the largest a token can carry "
        f"({Decimal(MAX_TENTHS) / 10} kWh)"
    )


def kwh_to_tenths(kwh: Decimal) -> int:
    """Whole tenths of a kWh, rounded up; any positive amount below 0.1 kWh becomes 0.1."""
    if not kwh.is_finite():
        raise StsError(f"amount {kwh} kWh is not a number")
    if kwh <= 0:
        raise StsError(f"amount {kwh} kWh must be positive")
    return int((kwh * 10).to_integral_value(rounding=ROUND_CEILING))


def tenths_to_kwh(tenths: int) -> Decimal:
    return Decimal(tenths) / 10


def round_kwh(kwh: Decimal) -> Decimal:
    """The amount a token for `kwh` actually delivers."""
    return tenths_to_kwh(field_to_tenths(tenths_to_field(kwh_to_tenths(kwh))))
