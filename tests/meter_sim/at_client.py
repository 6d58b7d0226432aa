"""A minimal blocking AT client over pyserial, for driving the emulator from a thread."""

from __future__ import annotations

import re

import serial

CTRL_Z = b"\x1a"
ESCAPE = b"\x1b"
_FINAL = re.compile(rb"\r\n(OK|ERROR|\+CM[ES] ERROR: \d+)\r\n$")


class SerialAt:
    def __init__(self, path: str) -> None:
        self.port = serial.Serial(path, 115200, timeout=5)
        self.port.reset_input_buffer()

    def read_until(self, token: bytes) -> bytes:
        data: bytes = self.port.read_until(token)
        if not data.endswith(token):
            raise TimeoutError(f"no {token!r} from the modem; got {data!r}")
        return data

    def read_final(self) -> str:
        data = b""
        while not _FINAL.search(data):
            chunk = self.port.read_until(b"\r\n")
            if not chunk.endswith(b"\r\n"):
                raise TimeoutError(f"no final result; got {data + chunk!r}")
            data += chunk
        return data.decode("latin-1")

    def command(self, line: str) -> str:
        self.port.write(line.encode("ascii") + b"\r")
        return self.read_final()

    def send_pdu(self, tpdu_length: int, hex_text: str) -> str:
        return self.command_with_body(f"AT+CMGS={tpdu_length}", hex_text)

    def command_with_body(self, line: str, body: str, *, end: bytes = CTRL_Z) -> str:
        """A command answered by the `> ` prompt (AT+CMGS, AT+CMGW): `body` then `end`
        (Ctrl-Z sends, Esc cancels), then the final result."""
        self.write_with_body(line, body, end=end)
        return self.read_final()

    def write_with_body(self, line: str, body: str, *, end: bytes = CTRL_Z) -> None:
        """`command_with_body` up to the final result, which is left unread."""
        self.port.write(line.encode("ascii") + b"\r")
        self.read_until(b"> ")
        self.port.write(body.encode("ascii") + end)

    def read_within(self, seconds: float) -> bytes:
        """Whatever the modem writes within `seconds` (b"" from a modem that says nothing)."""
        timeout = self.port.timeout
        self.port.timeout = seconds
        try:
            data: bytes = self.port.read(4096)
        finally:
            self.port.timeout = timeout
        return data

    def close(self) -> None:
        self.port.close()
