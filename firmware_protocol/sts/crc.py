"""CRC-16 of an STS token's data block (IEC 62055-41: reflected 0xA001, initial 0xFFFF)."""

from __future__ import annotations

_POLY = 0xA001


def _table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ _POLY if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_TABLE = _table()


def crc16(data: bytes) -> int:
    crc = 0xFFFF
    for byte in data:
        crc = (crc >> 8) ^ _TABLE[(crc ^ byte) & 0xFF]
    return crc


def token_crc(class_: int, subclass: int, rnd: int, tid: int, field: int) -> int:
    """The CRC as stored in bits 0–15 of the data block (byte-swapped, as the standard says)."""
    value = field | tid << 16 | rnd << 40 | subclass << 44 | class_ << 48
    crc = crc16(value.to_bytes(7, "big"))
    return ((crc & 0xFF) << 8) | (crc >> 8)
