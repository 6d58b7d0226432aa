"""The master key for encryption at rest: 32 bytes, from the environment or a 0600 file."""

from __future__ import annotations

import hashlib
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

KEY_BYTES = 32


class MasterKeyError(ValueError):
    """The master key is missing, malformed, or kept in a file others can read."""


@dataclass(frozen=True, slots=True)
class MasterKey:
    """An AES-256 key and its id; the id is a fingerprint, so it names the key without
    revealing it and a sealed value can say which key sealed it."""

    key: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.key) != KEY_BYTES:
            raise MasterKeyError(f"master key must be {KEY_BYTES} bytes, got {len(self.key)}")

    @property
    def key_id(self) -> str:
        return "mk1-" + hashlib.sha256(b"pintar master key id\x00" + self.key).hexdigest()[:12]

    def __repr__(self) -> str:
        return f"MasterKey(key_id={self.key_id!r})"


def parse_master_key(text: str) -> MasterKey:
    """64 hex digits (whitespace around them ignored)."""
    compact = text.strip()
    if not re.fullmatch(r"[0-9a-fA-F]{64}", compact):
        raise MasterKeyError("master key must be 64 hex digits (32 bytes)")
    return MasterKey(bytes.fromhex(compact))


def check_private_file(path: Path) -> None:
    """Refuse a secret file that its group or others can read or write (must be 0600/0400)."""
    try:
        info = path.stat()
    except OSError as error:
        raise MasterKeyError(f"master key file {path}: {error.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise MasterKeyError(f"master key file {path} is not a regular file")
    if info.st_mode & 0o077:
        raise MasterKeyError(
            f"master key file {path} has mode {stat.S_IMODE(info.st_mode):04o}: "
            "group/others must have no access (chmod 600)"
        )
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        raise MasterKeyError(f"master key file {path} is not owned by the current user")


def load_master_key_file(path: Path) -> MasterKey:
    check_private_file(path)
    return parse_master_key(path.read_text(encoding="ascii", errors="replace"))
