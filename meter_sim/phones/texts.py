"""The texts customers type to the short code (the language of the hub's command grammar:
BELI <nominal> [meter] <PIN>, SALDO, STATUS, BANTUAN, STOP, MULAI), written independently of
the hub's parser so a test can hold one against the other."""

from __future__ import annotations

import random

BUY = "BELI"
BALANCE = "SALDO"
STATUS = "STATUS"
HELP = "BANTUAN"
STOP = "STOP"
START = "MULAI"

# The ways people write an amount: 100000, 100.000, 100rb, 100k (and 1jt for a million).
_STYLES = ("plain", "dots", "rb", "k")


def amount_text(amount_rp: int, style: str) -> str:
    if style == "dots":
        return f"{amount_rp:,}".replace(",", ".")
    if amount_rp % 1_000_000 == 0 and style in ("rb", "k"):
        return f"{amount_rp // 1_000_000}jt"
    if amount_rp % 1000 == 0 and style == "rb":
        return f"{amount_rp // 1000}rb"
    if amount_rp % 1000 == 0 and style == "k":
        return f"{amount_rp // 1000}k"
    return str(amount_rp)


def random_style(rng: random.Random) -> str:
    return rng.choice(_STYLES)


def buy_text(amount_rp: int, pin: str, meter: str | None = None, style: str = "rb") -> str:
    words = [BUY, amount_text(amount_rp, style)]
    if meter is not None:
        words.append(meter)
    words.append(pin)
    return " ".join(words)


def with_meter(keyword: str, meter: str | None) -> str:
    return keyword if meter is None else f"{keyword} {meter}"


def typo(keyword: str, rng: random.Random) -> str:
    """`keyword` misspelt the way thumbs misspell it: two letters swapped, one dropped or one
    doubled, or one replaced by its neighbour on the keypad row. Never the keyword itself."""
    letters = list(keyword)
    kind = rng.randrange(3)
    i = rng.randrange(len(letters) - 1)
    if kind == 0 and letters[i] != letters[i + 1]:
        letters[i], letters[i + 1] = letters[i + 1], letters[i]
    elif kind == 1:
        del letters[i + 1]
    else:
        letters[i + 1] = _NEIGHBOUR.get(letters[i + 1], "X")
    result = "".join(letters)
    return result if result != keyword else keyword[:-1] + "Q"


# A QWERTY neighbour per letter (phones without T9 are QWERTY too).
_NEIGHBOUR = dict(zip("QWERTYUIOPASDFGHJKLZXCVBNM", "WERTYUIOPQSDFGHJKLAXCVBNMZ", strict=True))


def wrong_pin(pin: str, rng: random.Random) -> str:
    """A PIN of the same length that is not `pin`."""
    while True:
        candidate = "".join(rng.choice("0123456789") for _ in pin)
        if candidate != pin:
            return candidate
