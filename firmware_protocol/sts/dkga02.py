"""DKGA02: derives a meter's 64-bit decoder key from the vending key and its identity."""

from __future__ import annotations

import re
from dataclasses import dataclass

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes

from firmware_protocol.sts.errors import StsError


@dataclass(frozen=True, slots=True)
class KeyData:
    """Everything DKGA02 takes besides the vending key; strings keep their leading zeros."""

    key_type: int
    supply_group_code: str
    tariff_index: str
    key_revision_number: int
    iin: str
    drn: str

    def __post_init__(self) -> None:
        _digit("key_type", self.key_type)
        _digit("key_revision_number", self.key_revision_number)
        _digits("supply_group_code", self.supply_group_code, 6)
        _digits("tariff_index", self.tariff_index, 2)
        _digits("iin", self.iin, 6)
        _digits("drn", self.drn, 11)


def _digit(name: str, value: int) -> None:
    if not 0 <= value <= 9:
        raise StsError(f"{name} must be one digit 0-9, got {value}")


def _digits(name: str, value: str, count: int) -> None:
    if not re.fullmatch(rf"[0-9]{{{count}}}", value):
        raise StsError(f"{name} must be exactly {count} digits, got {value!r}")


def parse_key_hex(text: str, name: str = "key") -> int:
    """A 64-bit key written as 16 hex digits, most significant byte first."""
    if not re.fullmatch(r"[0-9a-fA-F]{16}", text):
        raise StsError(f"{name} must be 16 hex digits (8 bytes), got {text!r}")
    return int(text, 16)


def _des_encrypt(key: bytes, block: bytes) -> bytes:
    # TripleDES with K1 = K2 = K3 is single DES.
    encryptor = Cipher(TripleDES(key * 3), modes.ECB()).encryptor()
    return encryptor.update(block) + encryptor.finalize()


def derive_decoder_key(vending_key: int, data: KeyData) -> int:
    if not 0 <= vending_key < 1 << 64:
        raise StsError("vending key must be 64 bits")
    pan = int(data.iin[-5:] + data.drn, 16)
    control = int(
        f"{data.key_type}{data.supply_group_code}{data.tariff_index}"
        f"{data.key_revision_number}FFFFFF",
        16,
    )
    x = pan ^ control
    vk = vending_key.to_bytes(8, "big")
    encrypted = int.from_bytes(_des_encrypt(vk, x.to_bytes(8, "big")), "big")
    return encrypted ^ x ^ vending_key
