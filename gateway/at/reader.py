"""Bytes from a modem (or to a modem) → tokens: lines, the `> ` prompt, Ctrl-Z / ESC ends.

The parser is incremental and byte-at-a-time, so however the serial port chunks its reads the
tokens come out the same. It never raises: a serial line delivers noise after a power cycle,
and the parser's job is to resynchronise at the next line end, not to give up.

The same codec serves both directions: the driver reads modem output with it, and the scripted
test device reads the driver's commands with it (a command ends with CR, a PDU body with Ctrl-Z,
a cancelled PDU with ESC).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import Enum

CR = 0x0D
LF = 0x0A
CTRL_Z = 0x1A
ESC = 0x1B
PROMPT = b"> "

#: A line longer than this is noise (a real response line is at most a few hundred bytes).
MAX_LINE = 4096


class LineEnd(Enum):
    EOL = "eol"  # CR, LF or any run of them
    CTRL_Z = "ctrl-z"  # end of a PDU body sent after the prompt
    ESC = "esc"  # a PDU body abandoned


@dataclass(frozen=True, slots=True)
class Line:
    text: str
    end: LineEnd = LineEnd.EOL


@dataclass(frozen=True, slots=True)
class Prompt:
    """The modem waits for a PDU (it sent `> ` at the start of a line)."""


@dataclass(frozen=True, slots=True)
class Discarded:
    """A line longer than MAX_LINE bytes was dropped (counted, so it can be logged)."""

    size: int


Token = Line | Prompt | Discarded

_TERMINATORS = {CR: LineEnd.EOL, LF: LineEnd.EOL, CTRL_Z: LineEnd.CTRL_Z, ESC: LineEnd.ESC}


def _clean(raw: bytes) -> str:
    # Other C0 controls and NULs are line noise; latin-1 maps every remaining byte to a
    # character, so decoding cannot fail and junk stays visible in logs.
    return bytes(b for b in raw if b >= 0x20 or b == 0x09).decode("latin-1").strip()


class LineReader:
    """Incremental tokenizer. `feed` returns the tokens completed by the given bytes."""

    def __init__(self, *, max_line: int = MAX_LINE) -> None:
        self._buffer = bytearray()
        self._overflow = 0  # bytes dropped from the current over-long line
        self._max_line = max_line

    def feed(self, data: bytes) -> list[Token]:
        return list(self._tokens(data))

    def _tokens(self, data: Iterable[int]) -> Iterator[Token]:
        for byte in data:
            end = _TERMINATORS.get(byte)
            if end is not None:
                yield from self._finish(end)
                continue
            if byte == 0x00:
                continue  # NUL padding, common right after a modem powers up
            if self._overflow:
                self._overflow += 1
                continue
            self._buffer.append(byte)
            if self._buffer == PROMPT:
                self._buffer.clear()
                yield Prompt()
            elif len(self._buffer) > self._max_line:
                self._overflow = len(self._buffer)
                self._buffer.clear()

    def _finish(self, end: LineEnd) -> Iterator[Token]:
        if self._overflow:
            size, self._overflow = self._overflow, 0
            yield Discarded(size)
            return
        text = _clean(bytes(self._buffer))
        self._buffer.clear()
        if text == ">":
            # Some modems send the prompt without its space, then a line end.
            yield Prompt()
        elif text or end is not LineEnd.EOL:
            yield Line(text, end)
