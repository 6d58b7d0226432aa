"""EA07, the STS Standard Transfer Algorithm: a 16-round substitution–permutation cipher
on a 64-bit block under a 64-bit decoder key."""

from __future__ import annotations

_MASK64 = (1 << 64) - 1
_ROUNDS = 16

S1 = (14, 10, 7, 9, 12, 3, 2, 5, 13, 0, 15, 1, 4, 8, 6, 11)
S2 = (12, 8, 2, 13, 7, 6, 1, 3, 11, 5, 9, 15, 0, 4, 10, 14)
P = (55, 42, 10, 18, 24, 21, 44, 35, 2, 22, 56, 43, 27, 58, 9, 50,
     6, 36, 12, 61, 37, 38, 53, 16, 62, 3, 7, 4, 32, 20, 63, 25,
     51, 52, 54, 33, 49, 19, 46, 29, 48, 31, 23, 30, 41, 28, 13, 5,
     40, 60, 39, 11, 15, 17, 1, 0, 57, 34, 59, 8, 47, 14, 45, 26)  # fmt: skip


def _inverse(table: tuple[int, ...]) -> tuple[int, ...]:
    inverse = [0] * len(table)
    for index, value in enumerate(table):
        inverse[value] = index
    return tuple(inverse)


S1_INV = _inverse(S1)
S2_INV = _inverse(S2)
P_INV = _inverse(P)


def _rol(value: int, count: int) -> int:
    count %= 64
    return ((value << count) | (value >> (64 - count))) & _MASK64


def _ror(value: int, count: int) -> int:
    return _rol(value, 64 - count % 64)


def _permute(value: int, table: tuple[int, ...]) -> int:
    out = 0
    for bit, target in enumerate(table):
        if value >> bit & 1:
            out |= 1 << target
    return out


def _substitute(value: int, key: int, low: tuple[int, ...], high: tuple[int, ...]) -> int:
    out = 0
    for n in range(16):
        nibble = value >> (4 * n) & 0xF
        box = high if key >> (4 * n + 3) & 1 else low
        out |= box[nibble] << (4 * n)
    return out


def _initial_key(decoder_key: int) -> int:
    return _ror(~decoder_key & _MASK64, 12)


def encrypt(block: int, decoder_key: int) -> int:
    key = _initial_key(decoder_key)
    for _ in range(_ROUNDS):
        block = _permute(_substitute(block, key, S1, S2), P)
        key = _rol(key, 1)
    return block


def decrypt(block: int, decoder_key: int) -> int:
    key = _rol(_initial_key(decoder_key), _ROUNDS - 1)
    for _ in range(_ROUNDS):
        block = _substitute(_permute(block, P_INV), key, S1_INV, S2_INV)
        key = _ror(key, 1)
    return block
