"""Secrets at rest: AES-GCM sealing under the master key, keyed hashes of customer PINs,
and slow (scrypt) hashes of helpdesk passwords."""

from operator_data.crypto.master_key import (
    MasterKey,
    MasterKeyError,
    load_master_key_file,
    parse_master_key,
)
from operator_data.crypto.pin_mac import (
    PinHashError,
    PinHashKeyMismatch,
    PinMacKey,
    verify_customer_pin,
)
from operator_data.crypto.pins import PinFormatError, hash_pin, verify_pin
from operator_data.crypto.sealing import SealError, open_sealed, seal

__all__ = [
    "MasterKey",
    "MasterKeyError",
    "PinFormatError",
    "PinHashError",
    "PinHashKeyMismatch",
    "PinMacKey",
    "SealError",
    "hash_pin",
    "load_master_key_file",
    "open_sealed",
    "parse_master_key",
    "seal",
    "verify_customer_pin",
    "verify_pin",
]
