"""How messages are delimited on the TCP stream; a setting, since switchers differ."""

from __future__ import annotations

from enum import StrEnum

from p2apst_adapter.dialect.errors import IsoError

_TRAILER = 0xFF
#: The largest message either side accepts; a longer one is a framing error, not a reason
#: to buffer without bound.
MAX_MESSAGE = 8192


class Framing(StrEnum):
    LENGTH_PREFIX = "length-prefix"  # 2-byte big-endian length, then the message
    TRAILING_FF = "trailing-ff"  # the message, then one 0xFF byte


def frame(message: bytes, framing: Framing = Framing.LENGTH_PREFIX) -> bytes:
    if not message:
        raise IsoError("cannot frame an empty message")
    if len(message) > MAX_MESSAGE:
        raise IsoError(f"message of {len(message)} bytes is over the {MAX_MESSAGE} limit")
    if framing is Framing.LENGTH_PREFIX:
        return len(message).to_bytes(2, "big") + message
    if _TRAILER in message:
        raise IsoError(
            "message contains 0xFF, which trailing-FF framing cannot carry",
            offset=message.index(_TRAILER),
        )
    return message + bytes([_TRAILER])


class Deframer:
    """Splits a byte stream into messages; feed it whatever the socket returned."""

    def __init__(self, framing: Framing = Framing.LENGTH_PREFIX) -> None:
        self.framing = framing
        self._buffer = bytearray()
        self._consumed = 0  # stream offset of the buffer's first byte, for error messages

    @property
    def pending(self) -> int:
        """Bytes received that do not yet make a whole message."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer += data
        if self.framing is Framing.LENGTH_PREFIX:
            return self._split_prefixed()
        return self._split_trailing()

    def _split_prefixed(self) -> list[bytes]:
        messages: list[bytes] = []
        while len(self._buffer) >= 2:
            length = int.from_bytes(self._buffer[:2], "big")
            if not 0 < length <= MAX_MESSAGE:
                raise IsoError(
                    f"frame length {length} is out of range 1..{MAX_MESSAGE}", offset=self._consumed
                )
            if len(self._buffer) < 2 + length:
                break
            messages.append(bytes(self._buffer[2 : 2 + length]))
            del self._buffer[: 2 + length]
            self._consumed += 2 + length
        return messages

    def _split_trailing(self) -> list[bytes]:
        messages: list[bytes] = []
        while (end := self._buffer.find(_TRAILER)) >= 0:
            if end > 0:  # a lone 0xFF is an empty keep-alive some switchers send
                messages.append(bytes(self._buffer[:end]))
            del self._buffer[: end + 1]
            self._consumed += end + 1
        if len(self._buffer) > MAX_MESSAGE:
            raise IsoError(f"no 0xFF within {MAX_MESSAGE} bytes", offset=self._consumed)
        return messages
