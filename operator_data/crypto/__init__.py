"""Secrets at rest: AES-GCM sealing under the master key, and slow PIN hashes."""

from operator_data.crypto.master_key import (
    MasterKey,
    MasterKeyError,
    load_master_key_file,
    parse_master_key,
)
from operator_data.crypto.pins import PinFormatError, hash_pin, verify_pin
from operator_data.crypto.sealing import SealError, open_sealed, seal

__all__ = [
    "MasterKey",
    "MasterKeyError",
    "PinFormatError",
    "SealError",
    "hash_pin",
    "load_master_key_file",
    "open_sealed",
    "parse_master_key",
    "seal",
    "verify_pin",
]
