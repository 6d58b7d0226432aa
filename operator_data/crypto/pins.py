"""Slow, salted hashes (scrypt), verified in constant time: helpdesk passwords, and the
customer PINs stored before keyed hashes (`crypto/pin_mac.py`), which the registry converts.

Stored form: "scrypt$<log2 n>$<r>$<p>$<salt hex>$<hash hex>", so the cost parameters can be
raised later without invalidating existing PINs.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re

LOG2_N = 14  # n = 16384, r = 8: 16 MiB and tens of milliseconds per guess
R = 8
P = 1
SALT_BYTES = 16
HASH_BYTES = 32


class PinFormatError(ValueError):
    """A PIN that the policy does not accept (the message says why, never the PIN)."""


def check_pin_format(pin: str, length: int) -> None:
    if not re.fullmatch(rf"[0-9]{{{length}}}", pin):
        raise PinFormatError(f"PIN must be exactly {length} digits")


def _derive(pin: str, salt: bytes, log2_n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        pin.encode(), salt=salt, n=1 << log2_n, r=r, p=p, dklen=HASH_BYTES, maxmem=64 << 20
    )


def hash_pin(pin: str) -> str:
    salt = os.urandom(SALT_BYTES)
    digest = _derive(pin, salt, LOG2_N, R, P)
    return f"scrypt${LOG2_N}${R}${P}${salt.hex()}${digest.hex()}"


def verify_pin(pin: str, stored: str) -> bool:
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != "scrypt":
        raise ValueError("stored PIN hash is not in scrypt$... form")
    log2_n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
    salt, expected = bytes.fromhex(parts[4]), bytes.fromhex(parts[5])
    return hmac.compare_digest(_derive(pin, salt, log2_n, r, p), expected)
