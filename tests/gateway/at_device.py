"""A scripted GSM modem on the master side of a real pseudo-terminal (zigpy-znp test style).

The driver under test opens `device.path` (/dev/pts/N) with pyserial-asyncio-fast exactly as it
would a USB modem. The device reads what the driver writes with the driver's own line codec,
records every command (`device.commands`; a PDU body is recorded as "<hex>\\x1a", an abandoned
one as "\\x1b"), and answers from rules: a regex → reply lines, or a callable that computes them.
Later rules win, so a test overrides the defaults of `standard_rules`. A reply may contain
PROMPT (the device then reads a PDU body) or raw bytes (garbage). Unsolicited lines can be
sent at any time, including from inside a reply, between a command and its final result.
"""

from __future__ import annotations

import asyncio
import os
import re
import tty
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType

from gateway.at.reader import Line, LineEnd, LineReader

PROMPT = object()
"""A reply item: send `\\r\\n> ` and read a PDU body (terminated by Ctrl-Z) next."""

ReplyItem = str | bytes | object
Reply = Sequence[ReplyItem] | Callable[[re.Match[str], "AtDevice"], Sequence[ReplyItem]]


@dataclass(slots=True)
class Rule:
    pattern: re.Pattern[str]
    reply: Reply
    once: bool = False


@dataclass(slots=True)
class Stored:
    stat: int  # 0 received unread, 1 received read, 2 stored unsent, 3 stored sent
    pdu: str


def tpdu_length(pdu_hex: str) -> int:
    """Octets after the SMSC part, as `+CMGR:`/`+CMGL:`/`AT+CMGS=` count them."""
    return len(pdu_hex) // 2 - 1 - int(pdu_hex[:2], 16)


@dataclass(slots=True)
class _Waiter:
    pattern: re.Pattern[str]
    count: int
    future: asyncio.Future[str]


@dataclass
class AtDevice:
    """Scripted modem. Use as `async with AtDevice() as device:`; open `device.path`."""

    echo: bool = True
    storage_total: int = 30
    storage: dict[int, Stored] = field(default_factory=dict)
    commands: list[str] = field(default_factory=list)
    raw_received: bytearray = field(default_factory=bytearray)  # every byte the driver wrote
    sent_pdus: list[str] = field(default_factory=list)
    hung: bool = False
    next_mr: int = 0
    resets: int = 0
    marks_sent: bool = True  # AT+CMSS sets the stored message's stat to 3 (STO SENT)
    last_command: str = ""  # the command line a PDU body belongs to (AT+CMGS= or AT+CMGW=)
    _rules: list[Rule] = field(default_factory=list)
    _waiters: list[_Waiter] = field(default_factory=list)
    _reader: LineReader = field(default_factory=LineReader)

    def __post_init__(self) -> None:
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        self.path = os.ttyname(self._slave)
        standard_rules(self)

    async def __aenter__(self) -> AtDevice:
        asyncio.get_running_loop().add_reader(self._master, self._readable)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        asyncio.get_running_loop().remove_reader(self._master)
        # The device keeps the slave open too, so the master never sees EIO while the driver
        # closes and reopens the port (as a reset does).
        os.close(self._slave)
        os.close(self._master)

    # -- scripting ----------------------------------------------------------------------------

    def on(self, pattern: str, reply: Reply, *, once: bool = False) -> None:
        """Answer commands fully matching `pattern` with `reply` (the newest rule wins)."""
        self._rules.append(Rule(re.compile(pattern), reply, once))

    def unsolicited(self, *lines: str) -> None:
        for line in lines:
            self._write(f"\r\n{line}\r\n".encode("latin-1"))

    def emit(self, raw: bytes) -> None:
        self._write(raw)

    def hang(self) -> None:
        """Stop answering anything until `AT+CFUN=1,1` or `unhang()` (a wedged USB modem)."""
        self.hung = True

    def unhang(self) -> None:
        self.hung = False

    def store(self, pdu: str, stat: int = 0) -> int:
        index = next(i for i in range(1, self.storage_total + 1) if i not in self.storage)
        self.storage[index] = Stored(stat, pdu)
        return index

    def transmit(self, pdu: str) -> int:
        """The PDU goes to the network; its message reference."""
        self.sent_pdus.append(pdu)
        mr, self.next_mr = self.next_mr, (self.next_mr + 1) % 256
        return mr

    def deliver(self, pdu: str) -> int:
        """Store an incoming SMS and announce it with +CMTI, as CNMI=2,1 asks."""
        index = self.store(pdu)
        self.unsolicited(f'+CMTI: "SM",{index}')
        return index

    async def wait_for(self, pattern: str, count: int = 1) -> str:
        """Wait until `count` commands fully matching `pattern` have been received."""
        compiled = re.compile(pattern)
        seen = [c for c in self.commands if compiled.fullmatch(c)]
        if len(seen) >= count:
            return seen[count - 1]
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._waiters.append(_Waiter(compiled, count - len(seen), future))
        return await future

    def matching(self, pattern: str) -> list[str]:
        compiled = re.compile(pattern)
        return [c for c in self.commands if compiled.fullmatch(c)]

    # -- I/O ----------------------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        os.write(self._master, data)

    def _readable(self) -> None:
        try:
            data = os.read(self._master, 4096)
        except OSError:
            return
        self.raw_received += data
        for token in self._reader.feed(data):
            if isinstance(token, Line):
                self._received(token)

    def _received(self, line: Line) -> None:
        if line.end is LineEnd.EOL:
            text = line.text
            self.last_command = text
            if self.echo:
                self._write(text.encode("latin-1") + b"\r")
        elif line.end is LineEnd.CTRL_Z:
            text = line.text + "\x1a"
            if self.echo:
                self._write(text.encode("latin-1"))
        else:
            text = "\x1b"
        self.commands.append(text)
        self._notify(text)
        if text.upper() == "AT+CFUN=1,1":
            self.resets += 1
            self.hung = False
            self.echo = True
            return  # rebooting: no answer; the driver reopens the port
        if self.hung:
            return
        self._answer(text)

    def _answer(self, text: str) -> None:
        for rule in reversed(self._rules):
            match = rule.pattern.fullmatch(text)
            if match is None:
                continue
            if rule.once:
                self._rules.remove(rule)
            reply = rule.reply(match, self) if callable(rule.reply) else rule.reply
            self._send_reply(reply)
            return
        if text != "\x1b":
            self._send_reply(["ERROR"])

    def _send_reply(self, reply: Sequence[ReplyItem]) -> None:
        for item in reply:
            if item is PROMPT:
                self._write(b"\r\n> ")
            elif isinstance(item, bytes):
                self._write(item)
            elif isinstance(item, str):
                self._write(f"\r\n{item}\r\n".encode("latin-1"))

    def _notify(self, text: str) -> None:
        for waiter in list(self._waiters):
            if waiter.pattern.fullmatch(text):
                waiter.count -= 1
                if waiter.count <= 0:
                    self._waiters.remove(waiter)
                    if not waiter.future.done():
                        waiter.future.set_result(text)


# -- the default script: a well-behaved modem with an empty SIM ---------------------------------


def _echo_off(match: re.Match[str], device: AtDevice) -> list[ReplyItem]:
    device.echo = False
    return ["OK"]


def _factory_reset(match: re.Match[str], device: AtDevice) -> list[ReplyItem]:
    device.echo = True
    return ["OK"]


def _cpms_query(match: re.Match[str], device: AtDevice) -> list[ReplyItem]:
    used, total = len(device.storage), device.storage_total
    return [f'+CPMS: "SM",{used},{total},"SM",{used},{total},"SM",{used},{total}', "OK"]


def _cpms_set(match: re.Match[str], device: AtDevice) -> list[ReplyItem]:
    used, total = len(device.storage), device.storage_total
    return [f"+CPMS: {used},{total},{used},{total},{used},{total}", "OK"]


def _cmgl(match: re.Match[str], device: AtDevice) -> list[ReplyItem]:
    wanted = int(match.group(1))
    lines: list[ReplyItem] = []
    for index in sorted(device.storage):
        stored = device.storage[index]
        if wanted == 4 or stored.stat == wanted:
            lines += [f"+CMGL: {index},{stored.stat},,{tpdu_length(stored.pdu)}", stored.pdu]
            if stored.stat == 0:
                stored.stat = 1
    return [*lines, "OK"]


def _cmgr(match: re.Match[str], device: AtDevice) -> list[ReplyItem]:
    stored = device.storage.get(int(match.group(1)))
    if stored is None:
        return ["+CMS ERROR: 321"]
    reply: list[ReplyItem] = [f"+CMGR: {stored.stat},,{tpdu_length(stored.pdu)}", stored.pdu, "OK"]
    if stored.stat == 0:
        stored.stat = 1
    return reply


def _cmgd(match: re.Match[str], device: AtDevice) -> list[ReplyItem]:
    if device.storage.pop(int(match.group(1)), None) is None:
        return ["+CMS ERROR: 321"]
    return ["OK"]


def _body(match: re.Match[str], device: AtDevice) -> list[ReplyItem]:
    """A PDU after the prompt: AT+CMGW stores it (STO UNSENT), AT+CMGS sends it."""
    if device.last_command.upper().startswith("AT+CMGW"):
        if len(device.storage) >= device.storage_total:
            return ["+CMS ERROR: 322"]
        return [f"+CMGW: {device.store(match.group(1), stat=2)}", "OK"]
    return [f"+CMGS: {device.transmit(match.group(1))}", "OK"]


def _cmss(match: re.Match[str], device: AtDevice) -> list[ReplyItem]:
    stored = device.storage.get(int(match.group(1)))
    if stored is None:
        return ["+CMS ERROR: 321"]
    if stored.stat not in (2, 3):
        return ["+CMS ERROR: 302"]
    mr = device.transmit(stored.pdu)
    if device.marks_sent:
        stored.stat = 3
    return [f"+CMSS: {mr}", "OK"]


def standard_rules(device: AtDevice) -> None:
    for pattern, reply in (
        (r"AT", ["OK"]),
        (r"ATZ", _factory_reset),
        (r"ATE0", _echo_off),
        (r"AT\+CMEE=1", ["OK"]),
        (r"AT\+CPIN\?", ["+CPIN: READY", "OK"]),
        (r"AT\+CREG\?", ["+CREG: 0,1", "OK"]),
        (r"AT\+CSQ", ["+CSQ: 21,99", "OK"]),
        (r"AT\+CMGF=0", ["OK"]),
        (r"AT\+CSCA\?", ['+CSCA: "+6281100000",145', "OK"]),
        (r'AT\+CSCA=".*",145', ["OK"]),
        (r"AT\+CSMS\?", ["+CSMS: 0,1,1,1", "OK"]),
        (r"AT\+CPMS=\?", ['+CPMS: ("SM","ME"),("SM","ME"),("SM","ME")', "OK"]),
        (r'AT\+CPMS="SM","SM","SM"', _cpms_set),
        (r"AT\+CPMS\?", _cpms_query),
        (r"AT\+CNMI=\?", ["+CNMI: (0-2),(0-3),(0,2),(0-2),(0,1)", "OK"]),
        (r"AT\+CNMI=2,1,0,1,0", ["OK"]),
        (r"AT\+CMMS=2", ["OK"]),
        (r"AT\+CGSN", ["356938035643809", "OK"]),
        (r"AT\+COPS\?", ['+COPS: 0,0,"TELKOMSEL",2', "OK"]),
        (r"AT\+CMGL=(\d)", _cmgl),
        (r"AT\+CMGR=(\d+)", _cmgr),
        (r"AT\+CMGD=(\d+)", _cmgd),
        (r"AT\+CMGS=\d+", [PROMPT]),
        (r"AT\+CMGW=\d+", [PROMPT]),
        (r"AT\+CMSS=(\d+)", _cmss),
        (r"([0-9A-Fa-f]+)\x1a", _body),
        (r"AT\+CNMA", ["OK"]),
    ):
        device.on(pattern, reply)
