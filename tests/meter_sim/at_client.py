"""A minimal blocking AT client over pyserial, for driving the emulator from a thread."""

from __future__ import annotations

import re

import serial

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
        self.port.write(f"AT+CMGS={tpdu_length}\r".encode())
        self.read_until(b"> ")
        self.port.write(hex_text.encode("ascii") + b"\x1a")
        return self.read_final()

    def close(self) -> None:
        self.port.close()
