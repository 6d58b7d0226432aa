"""GSM 03.38 default alphabet with its extension table, and septet packing (3GPP TS 23.038)."""

from __future__ import annotations

from gateway.pdu.errors import PduError

ESCAPE = 0x1B
BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
EXTENSION = {
    0x0A: "\f",
    0x14: "^",
    0x28: "{",
    0x29: "}",
    0x2F: "\\",
    0x3C: "[",
    0x3D: "~",
    0x3E: "]",
    0x40: "|",
    0x65: "€",
}
# 0x1B in the basic table is the escape, not a character anyone can type.
_BASIC_CODE = {char: code for code, char in enumerate(BASIC) if code != ESCAPE}
_EXTENSION_CODE = {char: code for code, char in EXTENSION.items()}


def septets_of(char: str) -> tuple[int, ...] | None:
    """The septets of one character, or None when GSM-7 cannot carry it."""
    if char in _BASIC_CODE:
        return (_BASIC_CODE[char],)
    if char in _EXTENSION_CODE:
        return (ESCAPE, _EXTENSION_CODE[char])
    return None


def can_encode(text: str) -> bool:
    return all(septets_of(char) is not None for char in text)


def septet_count(char: str) -> int:
    """Septets one character takes (2 for the extension table); unknown characters count 1."""
    found = septets_of(char)
    return 1 if found is None else len(found)


def encode(text: str) -> list[int]:
    result: list[int] = []
    for position, char in enumerate(text):
        found = septets_of(char)
        if found is None:
            raise PduError(f"text character {char!r} at position {position} is not in GSM-7")
        result.extend(found)
    return result


def decode(septets: list[int]) -> str:
    """Text of a septet sequence; an unknown extension code reads as its basic character."""
    chars: list[str] = []
    escaped = False
    for septet in septets:
        if escaped:
            chars.append(EXTENSION.get(septet, BASIC[septet]))
            escaped = False
        elif septet == ESCAPE:
            escaped = True
        else:
            chars.append(BASIC[septet])
    return "".join(chars)


def fill_bits(header_octets: int) -> int:
    """Zero bits after a user data header so the text starts on a septet boundary."""
    return (7 - (header_octets * 8) % 7) % 7


def pack(septets: list[int], fill: int = 0) -> bytes:
    """Septets packed LSB first after `fill` zero bits."""
    accumulator = 0
    bits = fill
    for septet in septets:
        accumulator |= (septet & 0x7F) << bits
        bits += 7
    return accumulator.to_bytes((bits + 7) // 8, "little")


def unpack(octets: bytes, count: int, fill: int = 0) -> list[int]:
    """`count` septets read from packed octets after `fill` bits."""
    accumulator = int.from_bytes(octets, "little") >> fill
    return [(accumulator >> (7 * index)) & 0x7F for index in range(count)]
