"""AES-GCM-128 with a truncated tag, as DLMS/COSEM security suite 0 uses it.

The IV is the sender's 8-byte system title followed by its 4-byte invocation counter. Both
directions of one meter share its key, so the system title also says who sent the frame:
without that, hub frame n and meter frame n would use the same IV under the same key, which
breaks GCM completely (keystream reuse and a forgeable tag).

`cryptography`'s `AESGCM` only accepts full 16-byte tags, so this module uses the lower-level
`Cipher(AES, GCM)`: encryption computes the full tag and keeps its first `TAG_LENGTH` bytes;
decryption passes the short tag with `min_tag_length`, and OpenSSL compares exactly those
bytes in constant time.
"""

from __future__ import annotations

from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from firmware_protocol.frames.direction import Direction
from firmware_protocol.frames.errors import FrameError, Reason

KEY_LENGTH: Final = 16
TAG_LENGTH: Final = 12
IV_LENGTH: Final = 12
#: The first three bytes of a system title: who sends under this title.
TITLE_PREFIX: Final = {Direction.UP: b"LPM", Direction.DOWN: b"LPH"}
METER_MAX: Final = 99_999_999_999


def system_title(meter_number: int, sender: Direction) -> bytes:
    """`LPM` (meter) or `LPH` (hub, talking to this meter) + the meter number as uint40."""
    return TITLE_PREFIX[sender] + meter_number.to_bytes(5, "big")


def iv(meter_number: int, sender: Direction, counter: int) -> bytes:
    return system_title(meter_number, sender) + counter.to_bytes(4, "big")


def check_key(key: bytes) -> None:
    if not isinstance(key, bytes) or len(key) != KEY_LENGTH:
        size = len(key) if isinstance(key, bytes) else type(key).__name__
        raise FrameError(Reason.BAD_KEY, f"a key is {KEY_LENGTH} bytes, got {size}")


def encrypt(key: bytes, nonce: bytes, aad: bytes, plaintext: bytes) -> bytes:
    """Ciphertext followed by the truncated tag."""
    check_key(key)
    encryptor = Cipher(algorithms.AES(key), modes.GCM(nonce)).encryptor()
    encryptor.authenticate_additional_data(aad)
    ciphertext = encryptor.update(plaintext) + encryptor.finalize()
    return ciphertext + encryptor.tag[:TAG_LENGTH]


def decrypt(key: bytes, nonce: bytes, aad: bytes, sealed: bytes, *, offset: int) -> bytes:
    """The plaintext, or FrameError(BAD_TAG); `offset` is where the tag starts in the frame."""
    check_key(key)
    ciphertext, tag = sealed[:-TAG_LENGTH], sealed[-TAG_LENGTH:]
    decryptor = Cipher(
        algorithms.AES(key), modes.GCM(nonce, tag, min_tag_length=TAG_LENGTH)
    ).decryptor()
    decryptor.authenticate_additional_data(aad)
    plaintext = decryptor.update(ciphertext)
    try:
        decryptor.finalize()
    except InvalidTag:
        raise FrameError(
            Reason.BAD_TAG,
            "authentication failed (wrong key, wrong meter or altered frame)",
            offset=offset,
        ) from None
    return plaintext
