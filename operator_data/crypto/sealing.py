"""AES-256-GCM sealing of small secrets (comms keys, tokens) bound to their owner by AAD.

Sealed form: version byte 0x01 | 12-byte random nonce | ciphertext | 16-byte tag. The AAD
(meter number for a comms key, transaction id for a token) means a sealed value copied
onto another row does not open.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from operator_data.crypto.master_key import MasterKey

VERSION = 0x01
NONCE_BYTES = 12
TAG_BYTES = 16


class SealError(ValueError):
    """A sealed value does not open: wrong key, wrong owner (AAD), or damaged bytes."""


def seal(master: MasterKey, plaintext: bytes, aad: str) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return bytes([VERSION]) + nonce + AESGCM(master.key).encrypt(nonce, plaintext, aad.encode())


def open_sealed(master: MasterKey, sealed: bytes, aad: str) -> bytes:
    if len(sealed) < 1 + NONCE_BYTES + TAG_BYTES:
        raise SealError(f"sealed value is {len(sealed)} bytes, shorter than nonce and tag")
    if sealed[0] != VERSION:
        raise SealError(f"sealed value byte 0: unknown version 0x{sealed[0]:02x}")
    nonce = sealed[1 : 1 + NONCE_BYTES]
    try:
        return AESGCM(master.key).decrypt(nonce, sealed[1 + NONCE_BYTES :], aad.encode())
    except InvalidTag:
        raise SealError(
            f"sealed value for {aad!r} does not authenticate under key {master.key_id}"
        ) from None
