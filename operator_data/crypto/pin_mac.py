"""Customer PINs as keyed hashes (HMAC-SHA256 under a subkey of the master key).

A customer PIN has only 10⁶ values, so no hash the hub can afford per purchase makes a
stolen table expensive to search: scrypt cost ~64 ms of CPU per purchase, yet all 10⁶
guesses at a stolen row still take under a day of one core. What protects these PINs is a
key the database never holds: the MAC key is derived (HKDF-SHA256) from the master key, so
a stolen database alone does not let anyone test a single guess, and online guessing is
bounded by the registry's lock-out. A check then costs microseconds.

Stored form: "hmac1$<master key id>$<salt hex>$<mac hex>", where
mac = HMAC(subkey, len(msisdn) | msisdn | salt | pin). The phone number is in the MAC input
so a hash copied onto another phone's row does not verify; the salt keeps two phones with
the same PIN from sharing a stored string (and a re-set PIN from repeating its old one).

Helpdesk passwords are not customer PINs: they stay on scrypt (`crypto/pins.py`). Customer
PINs stored by older versions as scrypt still verify here (`verify_customer_pin`) so the
registry can convert them on the next correct PIN.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from operator_data.crypto.master_key import MasterKey
from operator_data.crypto.pins import verify_pin as verify_scrypt

PREFIX = "hmac1"
HKDF_INFO = b"pintar customer PIN v1"
SALT_BYTES = 16
MAC_BYTES = 32
SCRYPT_PREFIX = "scrypt"

_MAC_FORM = re.compile(
    rf"{PREFIX}\$([!-#%-~]{{1,64}})\$([0-9a-f]{{{2 * SALT_BYTES}}})\$([0-9a-f]{{{2 * MAC_BYTES}}})"
)
# The scrypt hashes this project wrote for customers (crypto/pins.py: n = 2^14, r = 8, p = 1).
# Their cost is bounded before scrypt runs: a damaged row must not cost seconds of CPU or
# gigabytes of memory per purchase attempt.
_SCRYPT_FORM = re.compile(
    rf"{SCRYPT_PREFIX}\$([0-9]{{1,2}})\$([0-9]{{1,2}})\$([0-9]{{1,2}})\$(?:[0-9a-f]{{2}}){{8,64}}"
    r"\$[0-9a-f]{64}"
)
_SCRYPT_MAX_COST = 2 * (1 << 14) * 8  # n * r * p: twice what was ever written


class PinHashError(ValueError):
    """A stored customer PIN hash that cannot be checked (the message says why)."""


class PinHashKeyMismatch(PinHashError):
    """The hash was made under another master key than the one configured."""

    def __init__(self, key_id: str, current: str) -> None:
        super().__init__(
            f"PIN hash made under master key {key_id}, not the current {current}; reset the PIN"
        )
        self.key_id = key_id


def _encode(text: str) -> bytes:
    # surrogatepass: any str has one encoding, so a strange PIN is simply wrong, never an error.
    return text.encode("utf-8", "surrogatepass")


@dataclass(frozen=True, slots=True)
class PinMacKey:
    """The customer-PIN subkey of one master key. Derive it once and keep it: HKDF per
    check would cost more than the MAC itself."""

    key_id: str
    key: bytes = field(repr=False)

    @classmethod
    def derive(cls, master: MasterKey) -> PinMacKey:
        hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=HKDF_INFO)
        return cls(master.key_id, hkdf.derive(master.key))

    def _mac(self, msisdn: str, salt: bytes, pin: str) -> bytes:
        number = _encode(msisdn)
        # Length-prefixed number: (msisdn, pin) pairs cannot run into one another.
        message = len(number).to_bytes(2, "big") + number + salt + _encode(pin)
        return hmac.digest(self.key, message, hashlib.sha256)

    def hash(self, msisdn: str, pin: str) -> str:
        """The stored form for this phone's PIN; `msisdn` must be the normalised number
        the registry stores, since the MAC is bound to it."""
        salt = os.urandom(SALT_BYTES)
        return f"{PREFIX}${self.key_id}${salt.hex()}${self._mac(msisdn, salt, pin).hex()}"

    def verify(self, msisdn: str, pin: str, stored: str) -> bool:
        """True if `stored` is this phone's hash of `pin`. Raises `PinHashKeyMismatch` for
        a hash of another master key and `PinHashError` for anything not in hmac1$ form."""
        match = _MAC_FORM.fullmatch(stored)
        if match is None:
            raise PinHashError(f"stored PIN hash is not in {PREFIX}$<key id>$<salt>$<mac> form")
        key_id, salt_hex, mac_hex = match.groups()
        if key_id != self.key_id:
            raise PinHashKeyMismatch(key_id, self.key_id)
        expected = bytes.fromhex(mac_hex)
        return hmac.compare_digest(self._mac(msisdn, bytes.fromhex(salt_hex), pin), expected)


def is_pin_mac(stored: str) -> bool:
    """The stored string claims the current form (it may still fail to parse)."""
    return stored.startswith(PREFIX + "$")


def is_scrypt(stored: str) -> bool:
    """A hash from before keyed hashes: slow to check (run it in a thread), then convert."""
    return stored.startswith(SCRYPT_PREFIX + "$")


def _verify_legacy_scrypt(pin: str, stored: str) -> bool:
    match = _SCRYPT_FORM.fullmatch(stored)
    if match is None:
        raise PinHashError("stored PIN hash is not in scrypt$n$r$p$salt$hash form")
    log2_n, r, p = (int(g) for g in match.groups())
    if not (log2_n >= 1 and r >= 1 and p >= 1 and (1 << log2_n) * r * p <= _SCRYPT_MAX_COST):
        raise PinHashError(f"stored scrypt PIN hash has unexpected cost n=2^{log2_n} r={r} p={p}")
    try:
        pin.encode()
    except UnicodeEncodeError:
        return False  # scrypt hashes were only ever made of encodable PINs
    try:
        return verify_scrypt(pin, stored)
    except (ValueError, OverflowError, MemoryError) as error:
        raise PinHashError(f"stored scrypt PIN hash cannot be checked: {error}") from None


def verify_customer_pin(key: PinMacKey, msisdn: str, pin: str, stored: str) -> bool:
    """Check a customer PIN against either stored form: hmac1 (microseconds) or the older
    scrypt (tens of milliseconds: call it in a thread when `is_scrypt(stored)`). Returns
    whether it matches; raises only `PinHashError` (or its `PinHashKeyMismatch`)."""
    if is_pin_mac(stored):
        return key.verify(msisdn, pin, stored)
    if is_scrypt(stored):
        return _verify_legacy_scrypt(pin, stored)
    raise PinHashError("stored PIN hash is in neither hmac1$ nor scrypt$ form")
