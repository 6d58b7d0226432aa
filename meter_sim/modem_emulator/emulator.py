"""A GSM modem answering AT commands (TS 27.007 / 27.005, PDU mode) on a pseudo-terminal.

Commands are read and answered one at a time by a single worker task, as a modem's
command interpreter does; unsolicited result codes (+CMTI, +CDS, +CDSI) are written when
no command is running, otherwise right after its final result.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta, timezone
from types import TracebackType
from typing import Self

from gateway import pdu
from gateway.msisdn import MsisdnError, normalise
from meter_sim.modem_emulator import profile as p
from meter_sim.modem_emulator.pty_port import PtyPort
from meter_sim.modem_emulator.storage import SimStorage, Stat, StoredMessage
from meter_sim.network import NetworkSms, NetworkStatusReport, SmsNetwork

log = logging.getLogger(__name__)
Sleep = Callable[[float], Awaitable[None]]
WIB = timezone(timedelta(hours=7))
CTRL_Z = 0x1A
ESCAPE = 0x1B
_BASIC = re.compile(r"S\d+(?:=\d*|\?)|&[A-Z]\d*|[A-Z]\d*")
_CME_NOT_ALLOWED = 3


class _CommandError(Exception):
    def __init__(self, family: str = "", code: int = 0) -> None:
        super().__init__(family, code)
        self.family = family  # "", "CME" or "CMS"
        self.code = code


@dataclass(slots=True)
class _Settings:
    """What ATZ, AT&F and a restart bring back to the defaults."""

    echo: bool = True
    cmee: int = 0
    cmgf: int = 0
    creg: int = 0
    cnmi: tuple[int, int, int, int, int] = (0, 0, 0, 0, 0)
    cmms: int = 0
    csmp: str = "17,167,0,0"
    cscs: str = "GSM"
    csms: int = 0
    ifc: tuple[int, int] = (2, 2)  # RTS/CTS both ways, as USB modems report


@dataclass(frozen=True, slots=True)
class Identity:
    manufacturer: str = "Pintar"
    model: str = "SIMULATED-GSM"
    revision: str = "EMU 1.0"
    imei: str = "356938035643809"
    imsi: str = "510100000000001"


class ModemEmulator:
    """`async with ModemEmulator(network, "+6281200000001") as modem:` then open
    `modem.device_path` with any serial software."""

    def __init__(
        self,
        network: SmsNetwork,
        msisdn: str,
        *,
        timing: p.TimingProfile = p.TimingProfile.FAST,
        faults: p.Faults | None = None,
        sim_slots: int = 30,
        seed: int = 0,
        sleep: Sleep = asyncio.sleep,
        identity: Identity | None = None,
    ) -> None:
        self.network = network
        self.msisdn = msisdn
        self.timing = timing
        self.faults = faults or p.Faults()
        self.storage = SimStorage(sim_slots)
        self.identity = identity or Identity()
        self.settings = _Settings()
        self.smsc = network.smsc_address
        # The radio side, set by tests to move the signal or change network: +CSQ <rssi>
        # (0-31, 99 not known) and the operator +COPS? names (long alphanumeric format).
        self.rssi = 20
        self.operator = "TELKOMSEL"
        self._random = random.Random(seed)
        self._sleep = sleep
        self._input: asyncio.Queue[bytes] = asyncio.Queue()
        self._buffer = bytearray()
        self._busy = False
        self._urcs: list[str] = []
        self._message_reference = 0
        self._port: PtyPort | None = None
        self._worker: asyncio.Task[None] | None = None

    # --- lifetime ---------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        self._port = PtyPort(self._input.put_nowait)
        self._worker = asyncio.get_running_loop().create_task(self._serve())
        self.network.attach(self.msisdn, self)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.network.detach(self.msisdn)
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
        if self._port is not None:
            self._port.close()

    @property
    def device_path(self) -> str:
        if self._port is None:
            raise RuntimeError("the emulator is not running (use `async with`)")
        return self._port.path

    def reset(self) -> None:
        """Power cycle: settings to defaults, a hang cleared; the SIM keeps its messages."""
        self.settings = _Settings()
        self.faults.hung = False
        self._urcs.clear()

    def close_port(self) -> None:
        """Fault: the serial port disappears (as a USB modem that drops off the bus)."""
        if self._port is not None:
            self._port.close()

    # --- network side -----------------------------------------------------------------

    async def receive_sms(self, sms: NetworkSms) -> bool:
        try:
            hex_text = pdu.encode_deliver(
                sms.sender,
                text=sms.text,
                data=sms.data,
                timestamp=sms.submitted_at.astimezone(WIB).replace(microsecond=0),
                concat=sms.concat,
                smsc=self.smsc,
                encoding=sms.encoding,
            )
        except pdu.PduError as error:
            log.warning("dropping an SMS the emulator cannot encode: %s", error)
            return True
        length = _tpdu_length(hex_text)
        mode = self.settings.cnmi[1]
        if mode == 2:
            self._urc(f"+CMT: ,{length}\r\n{hex_text}")
            return True
        index = self.storage.store(StoredMessage(Stat.REC_UNREAD, hex_text, length))
        if index is None:
            return False  # SIM full: no +CMTI, the SMSC tries again later
        if mode in (1, 3):
            self._urc(f'+CMTI: "SM",{index}')
        return True

    async def receive_status_report(self, report: NetworkStatusReport) -> None:
        hex_text = pdu.encode_status_report(
            report.recipient,
            message_reference=report.message_reference,
            status=report.status,
            submitted=report.submitted_at.astimezone(WIB).replace(microsecond=0),
            discharged=report.discharged_at.astimezone(WIB).replace(microsecond=0),
            smsc=self.smsc,
        )
        length = _tpdu_length(hex_text)
        mode = self.settings.cnmi[3]
        if mode == 1:
            self._urc(f"+CDS: {length}\r\n{hex_text}")
        elif mode == 2:
            index = self.storage.store(StoredMessage(Stat.REC_UNREAD, hex_text, length))
            if index is not None:
                self._urc(f'+CDSI: "SM",{index}')

    # --- serial side ------------------------------------------------------------------

    def _write(self, text: str) -> None:
        if self._port is None:
            return
        data = text.encode("ascii")
        if self.faults.garbage_rate and self._random.random() < self.faults.garbage_rate:
            data = bytes(self._random.randrange(0x80, 0x100) for _ in range(4)) + data
        self._port.write(data)

    def _urc(self, text: str) -> None:
        if self.faults.hung:
            return  # a hung modem says nothing at all; a restart would not replay it either
        if self._busy:
            self._urcs.append(text)
        else:
            self._write(f"\r\n{text}\r\n")

    async def _more(self) -> None:
        self._buffer += await self._input.get()

    async def _read_line(self) -> str:
        while True:
            end = self._buffer.find(b"\r")
            if end >= 0:
                raw = bytes(self._buffer[: end + 1])
                del self._buffer[: end + 1]
                if self.settings.echo and not self.faults.hung and self._port is not None:
                    self._port.write(raw)
                return raw[:-1].decode("latin-1").replace("\n", "").strip()
            await self._more()

    async def _read_pdu(self) -> tuple[str, bool]:
        """Text up to Ctrl-Z (send) or Esc (cancel)."""
        while True:
            for position, octet in enumerate(self._buffer):
                if octet in (CTRL_Z, ESCAPE):
                    raw = bytes(self._buffer[: position + 1])
                    del self._buffer[: position + 1]
                    if self.settings.echo and self._port is not None:
                        self._port.write(raw)
                    return raw[:-1].decode("latin-1").strip(), octet == CTRL_Z
            await self._more()

    async def _serve(self) -> None:
        while True:
            line = await self._read_line()
            if self.faults.hung:
                if "+CFUN=1,1" in line.upper().replace(" ", ""):
                    self.reset()
                    self._write("\r\nOK\r\n")
                continue
            if not line.upper().startswith("AT"):
                continue  # modems ignore anything that is not a command
            self._busy = True
            try:
                await self._execute(line[2:])
            finally:
                self._busy = False
                for urc in [] if self.faults.hung else self._urcs:
                    self._write(f"\r\n{urc}\r\n")
                self._urcs.clear()

    async def _execute(self, body: str) -> None:
        info: list[str] = []
        try:
            for command in _split(body):
                info += await self._command(command)
                if self.faults.hung:
                    return  # it died while executing (e.g. right after a send): no answer
        except _CommandError as error:
            self._write(_block(info) + self._error(error))
            return
        self._write(_block(info) + "\r\nOK\r\n")

    def _error(self, error: _CommandError) -> str:
        if error.family and self.settings.cmee:
            return f"\r\n+{error.family} ERROR: {error.code}\r\n"
        return "\r\nERROR\r\n"

    async def _command(self, command: str) -> list[str]:
        upper = command.upper()
        if upper[:1] in "+^":
            match = re.fullmatch(r"([+^][A-Z]+)(=\?|\?|=(.*))?", command, re.IGNORECASE)
            if match is None:
                raise _CommandError()
            name, form, args = match.group(1).upper(), match.group(2) or "", match.group(3)
            handler = _EXTENDED.get(name)
            if handler is None:
                raise _CommandError()
            kind = (
                "test"
                if form == "=?"
                else "read"
                if form == "?"
                else "set"
                if args is not None
                else "action"
            )
            return await handler(self, kind, args or "")
        return self._basic(upper)

    def _basic(self, command: str) -> list[str]:
        letter, rest = command[:1], command[1:]
        if letter == "E" and rest in ("", "0", "1"):
            self.settings.echo = rest == "1"
        elif command in ("Z", "Z0", "&F", "&F0"):
            self.settings = _Settings()
        elif command in ("I", "I0"):
            return [f"{self.identity.manufacturer} {self.identity.model}", self.identity.revision]
        elif letter in ("V", "Q", "X") or command[:2] in ("&C", "&D", "&W", "&K") or letter == "S":
            pass  # accepted; the emulator always answers verbose
        else:
            raise _CommandError()
        return []

    # --- extended commands ------------------------------------------------------------

    async def _identity(self, kind: str, value: str) -> list[str]:
        if kind == "test":
            return []
        if kind != "action":
            raise _CommandError()
        return [value]

    async def cgmi(self, kind: str, args: str) -> list[str]:
        return await self._identity(kind, self.identity.manufacturer)

    async def cgmm(self, kind: str, args: str) -> list[str]:
        return await self._identity(kind, self.identity.model)

    async def cgmr(self, kind: str, args: str) -> list[str]:
        return await self._identity(kind, self.identity.revision)

    async def cgsn(self, kind: str, args: str) -> list[str]:
        return await self._identity(kind, self.identity.imei)

    async def cimi(self, kind: str, args: str) -> list[str]:
        return await self._identity(kind, self.identity.imsi)

    async def cmee(self, kind: str, args: str) -> list[str]:
        return self._setting(kind, args, "cmee", "+CMEE", (0, 1, 2))

    async def cmgf(self, kind: str, args: str) -> list[str]:
        if kind == "set" and args.strip() == "1":
            raise _CommandError("CMS", p.CMS_NOT_SUPPORTED)  # text mode: not emulated
        if kind == "test":
            return ["+CMGF: (0)"]
        return self._setting(kind, args, "cmgf", "+CMGF", (0,))

    async def cmms(self, kind: str, args: str) -> list[str]:
        return self._setting(kind, args, "cmms", "+CMMS", (0, 1, 2))

    async def creg(self, kind: str, args: str) -> list[str]:
        if kind == "read":
            return [f"+CREG: {self.settings.creg},1"]
        return self._setting(kind, args, "creg", "+CREG", (0, 1, 2))

    def _setting(
        self, kind: str, args: str, attribute: str, name: str, allowed: tuple[int, ...]
    ) -> list[str]:
        if kind == "read":
            return [f"{name}: {getattr(self.settings, attribute)}"]
        if kind == "test":
            return [f"{name}: ({','.join(map(str, allowed))})"]
        if kind == "set":
            try:
                value = int(args.strip() or "0")
            except ValueError:
                raise _CommandError("CME", _CME_NOT_ALLOWED) from None
            if value not in allowed:
                raise _CommandError("CME", _CME_NOT_ALLOWED)
            setattr(self.settings, attribute, value)
            return []
        raise _CommandError()

    async def cpin(self, kind: str, args: str) -> list[str]:
        if kind == "read":
            return ["+CPIN: READY"]
        if kind == "test":
            return []
        raise _CommandError("CME", _CME_NOT_ALLOWED)

    async def csq(self, kind: str, args: str) -> list[str]:
        if kind == "test":
            return ["+CSQ: (0-31,99),(0-7,99)"]
        if kind != "action":
            raise _CommandError()
        return [f"+CSQ: {self.rssi},99"]

    async def cops(self, kind: str, args: str) -> list[str]:
        """27.007 §7.3: registered automatically on `operator`, shown in the long format."""
        if kind == "read":
            return [f'+COPS: 0,0,"{self.operator}",2']
        if kind == "test":
            return [f'+COPS: (2,"{self.operator}","{self.operator[:8]}","51010",2),,(0-4),(0-2)']
        if kind == "set" and args.split(",")[0].strip() in ("0", "3"):
            return []  # automatic selection, or the name format: the emulator keeps long
        raise _CommandError("CME", _CME_NOT_ALLOWED)

    async def cfun(self, kind: str, args: str) -> list[str]:
        if kind == "read":
            return ["+CFUN: 1"]
        if kind == "test":
            return ["+CFUN: (0,1,4),(0,1)"]
        if kind == "set" and args.replace(" ", "") == "1,1":
            self.reset()
        return []

    async def csms(self, kind: str, args: str) -> list[str]:
        """27.005 §3.2.1 (mandatory): message service; every type supported for both."""
        if kind == "test":
            return ["+CSMS: (0,1)"]
        if kind == "read":
            return [f"+CSMS: {self.settings.csms},1,1,1"]
        if kind == "set":
            self._setting(kind, args, "csms", "+CSMS", (0, 1))
            return ["+CSMS: 1,1,1"]
        raise _CommandError()

    async def ifc(self, kind: str, args: str) -> list[str]:
        """V.250 §6.2.12: local flow control (a pty has none to change; settings kept)."""
        if kind == "test":
            return ["+IFC: (0-3),(0-2)"]
        if kind == "read":
            return ["+IFC: {},{}".format(*self.settings.ifc)]
        if kind == "set":
            try:
                by_dte, by_dce = (int(v) for v in [*args.split(","), "2"][:2])
            except ValueError:
                raise _CommandError("CME", _CME_NOT_ALLOWED) from None
            if by_dte not in range(4) or by_dce not in range(3):
                raise _CommandError("CME", _CME_NOT_ALLOWED)
            self.settings.ifc = (by_dte, by_dce)
            return []
        raise _CommandError()

    async def cscs(self, kind: str, args: str) -> list[str]:
        if kind == "read":
            return [f'+CSCS: "{self.settings.cscs}"']
        if kind == "test":
            return ['+CSCS: ("GSM","UCS2","IRA")']
        if kind == "set":
            self.settings.cscs = args.strip().strip('"').upper()
        return []

    async def csca(self, kind: str, args: str) -> list[str]:
        if kind == "read":
            toa = 145 if self.smsc.startswith("+") else 129
            return [f'+CSCA: "{self.smsc}",{toa}']
        if kind == "set":
            self.smsc = args.split(",")[0].strip().strip('"')
        return []

    async def csmp(self, kind: str, args: str) -> list[str]:
        if kind == "read":
            return [f"+CSMP: {self.settings.csmp}"]
        if kind == "set":
            self.settings.csmp = args.strip()
        return []

    async def cnmi(self, kind: str, args: str) -> list[str]:
        if kind == "read":
            return ["+CNMI: " + ",".join(map(str, self.settings.cnmi))]
        if kind == "test":
            return ["+CNMI: (0-2),(0-3),(0,2),(0-2),(0,1)"]
        if kind != "set":
            raise _CommandError()
        try:
            values = [int(v) if v.strip() else 0 for v in args.split(",")]
        except ValueError:
            raise _CommandError("CMS", p.CMS_NOT_SUPPORTED) from None
        values = (values + [0] * 5)[:5]
        limits = (2, 3, 2, 2, 1)
        if any(not 0 <= v <= limit for v, limit in zip(values, limits, strict=True)):
            raise _CommandError("CMS", p.CMS_NOT_SUPPORTED)
        self.settings.cnmi = (values[0], values[1], values[2], values[3], values[4])
        return []

    def _memory_counts(self) -> str:
        used, total = self.storage.used, self.storage.slots
        return f"{used},{total},{used},{total},{used},{total}"

    async def cpms(self, kind: str, args: str) -> list[str]:
        if kind == "test":
            return ['+CPMS: ("SM"),("SM"),("SM")']
        if kind == "read":
            used, total = self.storage.used, self.storage.slots
            return [f'+CPMS: "SM",{used},{total},"SM",{used},{total},"SM",{used},{total}']
        memories = [m.strip().strip('"').upper() for m in args.split(",") if m.strip()]
        if kind != "set" or not memories or any(m != "SM" for m in memories):
            raise _CommandError("CMS", p.CMS_NOT_ALLOWED)  # only SIM storage
        return [f"+CPMS: {self._memory_counts()}"]

    async def cnma(self, kind: str, args: str) -> list[str]:
        return []

    def _index(self, args: str) -> int:
        try:
            index = int(args.split(",")[0])
        except ValueError:
            raise _CommandError("CMS", p.CMS_INVALID_INDEX) from None
        if not self.storage.valid(index):
            raise _CommandError("CMS", p.CMS_INVALID_INDEX)
        return index

    async def cmgr(self, kind: str, args: str) -> list[str]:
        if kind == "test":
            return []
        index = self._index(args)
        message = self.storage.get(index)
        if message is None:
            raise _CommandError("CMS", p.CMS_INVALID_INDEX)
        shown = message.stat
        if message.stat is Stat.REC_UNREAD:
            message.stat = Stat.REC_READ
        return [f"+CMGR: {int(shown)},,{message.tpdu_length}", message.pdu_hex]

    async def cmgl(self, kind: str, args: str) -> list[str]:
        if kind == "test":
            return ["+CMGL: (0-4)"]
        try:
            stat = Stat(int(args.strip() or "0"))
        except ValueError:
            raise _CommandError("CMS", p.CMS_NOT_SUPPORTED) from None
        lines: list[str] = []
        for index, message in self.storage.listing(stat):
            lines += [f"+CMGL: {index},{int(message.stat)},,{message.tpdu_length}", message.pdu_hex]
            if message.stat is Stat.REC_UNREAD:
                message.stat = Stat.REC_READ
        return lines

    async def cmgd(self, kind: str, args: str) -> list[str]:
        if kind == "test":
            return [f"+CMGD: (1-{self.storage.slots}),(0-4)"]
        parts = args.split(",")
        flag = int(parts[1]) if len(parts) > 1 and parts[1].strip() else 0
        if flag == 0:
            self.storage.delete(self._index(args))
            return []
        deleted = {
            1: {Stat.REC_READ},
            2: {Stat.REC_READ, Stat.STO_SENT},
            3: {Stat.REC_READ, Stat.STO_SENT, Stat.STO_UNSENT},
            4: set(Stat),
        }.get(flag)
        if deleted is None:
            raise _CommandError("CMS", p.CMS_NOT_SUPPORTED)
        self.storage.delete_where(deleted)
        return []

    async def cmgs(self, kind: str, args: str) -> list[str]:
        if kind == "test":
            return []
        if kind != "set" or self.settings.cmgf != 0:
            raise _CommandError("CMS", p.CMS_NOT_SUPPORTED)
        try:
            length = int(args.strip())
        except ValueError:
            raise _CommandError("CMS", p.CMS_INVALID_PDU) from None
        self._write("\r\n> ")
        hex_text, send = await self._read_pdu()
        if not send:
            return []
        submit = self._parse_submit(hex_text, length)
        if self.storage.full:
            # As modems that must keep room for a status report: the driver has to read and
            # delete stored messages first (domain notes: 322 -> empty the SIM, continue).
            raise _CommandError("CMS", p.CMS_MEMORY_FULL)
        return [f"+CMGS: {await self._send(submit, _route(submit.recipient))}"]

    async def cmgw(self, kind: str, args: str) -> list[str]:
        if kind == "test":
            return []
        if kind != "set" or self.settings.cmgf != 0:
            raise _CommandError("CMS", p.CMS_NOT_SUPPORTED)
        parts = args.split(",")
        try:
            length = int(parts[0].strip())
            stat = Stat(int(parts[1])) if len(parts) > 1 and parts[1].strip() else Stat.STO_UNSENT
        except ValueError:
            raise _CommandError("CMS", p.CMS_INVALID_PDU) from None
        if len(parts) > 2 or stat not in (Stat.STO_UNSENT, Stat.STO_SENT):
            raise _CommandError("CMS", p.CMS_INVALID_PDU)  # a SUBMIT is stored, not received
        self._write("\r\n> ")
        hex_text, store = await self._read_pdu()
        if not store:
            return []
        self._parse_submit(hex_text, length)
        index = self.storage.store(StoredMessage(stat, hex_text, length))
        if index is None:
            raise _CommandError("CMS", p.CMS_MEMORY_FULL)
        return [f"+CMGW: {index}"]

    async def cmss(self, kind: str, args: str) -> list[str]:
        if kind == "test":
            return []
        if kind != "set":
            raise _CommandError("CMS", p.CMS_INVALID_INDEX)
        message = self.storage.get(self._index(args))
        if message is None:
            raise _CommandError("CMS", p.CMS_INVALID_INDEX)
        if message.stat not in (Stat.STO_UNSENT, Stat.STO_SENT):
            raise _CommandError("CMS", p.CMS_NOT_ALLOWED)  # a received message: not a SUBMIT
        submit = self._parse_submit(message.pdu_hex, message.tpdu_length)
        reference = await self._send(submit, self._cmss_recipient(args, submit))
        if self.faults.marks_sent:
            message.stat = Stat.STO_SENT
        return [f"+CMSS: {reference}"]

    @staticmethod
    def _cmss_recipient(args: str, submit: pdu.Submit) -> str:
        """`<da>` of `AT+CMSS=<index>,<da>,<toda>` when given, else the stored TP-DA."""
        parts = [part.strip() for part in args.split(",")]
        da = parts[1].strip('"') if len(parts) > 1 else ""
        if not da:
            return _route(submit.recipient)
        try:
            toda = int(parts[2]) if len(parts) > 2 and parts[2] else None
        except ValueError:
            raise _CommandError("CMS", p.CMS_INVALID_PDU) from None
        if toda == 145 and not da.startswith("+"):
            da = "+" + da  # international type of number: the digits lack only the "+"
        return _route(da)

    async def _send(self, submit: pdu.Submit, recipient: str) -> int:
        """Submit to the network as AT+CMGS and AT+CMSS do; the message reference used."""
        low, high = p.SEND_SECONDS[self.timing]
        if high:
            await self._sleep(self._random.uniform(low, high))
        if self.faults.send_error_rate and self._random.random() < self.faults.send_error_rate:
            raise _CommandError("CMS", self._random.choice(self.faults.send_error_codes))
        self._message_reference = (self._message_reference + 1) % 256
        reference = self._message_reference
        self.network.submit(
            self.msisdn,
            recipient,
            text=submit.text,
            data=submit.data,
            concat=submit.concat,
            report_reference=reference if submit.status_report_requested else None,
            encoding=submit.encoding,  # the PDU's TP-DCS, for the recipient's copy
        )
        if self.faults.hang_after_next_send:
            # The SMS is out; the modem dies before its answer (`_execute` writes nothing).
            self.faults.hang_after_next_send = False
            self.faults.hung = True
        return reference

    def _parse_submit(self, hex_text: str, length: int) -> pdu.Submit:
        octets = len(hex_text) // 2
        try:
            decoded = pdu.decode(hex_text, has_smsc=octets != length)
        except pdu.PduError as error:
            log.info("rejecting PDU %s: %s", hex_text, error)
            raise _CommandError("CMS", p.CMS_INVALID_PDU) from None
        smsc_octets = octets - length
        if not isinstance(decoded.pdu, pdu.Submit) or smsc_octets < 0:
            raise _CommandError("CMS", p.CMS_INVALID_PDU)
        if smsc_octets and smsc_octets != 1 + int(hex_text[:2], 16):
            raise _CommandError("CMS", p.CMS_INVALID_PDU)  # <length> does not match the PDU
        return decoded.pdu


def _block(lines: list[str]) -> str:
    """Information text: lines joined by CRLF, framed by CRLF (V.250 verbose format)."""
    return "\r\n" + "\r\n".join(lines) + "\r\n" if lines else ""


def _tpdu_length(hex_text: str) -> int:
    return len(hex_text) // 2 - 1 - int(hex_text[:2], 16)


def _route(recipient: str) -> str:
    """Numbers as the network knows them: national 08... becomes +628..."""
    try:
        return normalise(recipient, mobile_only=False)
    except MsisdnError:
        return recipient


def _split(body: str) -> list[str]:
    """`ATE0+CMEE=1;+CMGF=0` -> ["E0", "+CMEE=1", "+CMGF=0"]."""
    commands: list[str] = []
    rest = body.strip()
    while rest:
        if rest[0] in ";  ":
            rest = rest[1:]
        elif rest[0] in "+^":
            end = rest.find(";")
            end = len(rest) if end < 0 else end
            commands.append(rest[:end])
            rest = rest[end + 1 :]
        else:
            match = _BASIC.match(rest.upper())
            if match is None:
                raise _CommandError()
            commands.append(match.group())
            rest = rest[match.end() :]
    return commands


_Handler = Callable[[ModemEmulator, str, str], Awaitable[list[str]]]
_EXTENDED: dict[str, _Handler] = {
    "+CGMI": ModemEmulator.cgmi,
    "+GMI": ModemEmulator.cgmi,
    "+CGMM": ModemEmulator.cgmm,
    "+GMM": ModemEmulator.cgmm,
    "+CGMR": ModemEmulator.cgmr,
    "+GMR": ModemEmulator.cgmr,
    "+CGSN": ModemEmulator.cgsn,
    "+GSN": ModemEmulator.cgsn,
    "+CIMI": ModemEmulator.cimi,
    "+CMEE": ModemEmulator.cmee,
    "+CMGF": ModemEmulator.cmgf,
    "+CMMS": ModemEmulator.cmms,
    "+CREG": ModemEmulator.creg,
    "+CPIN": ModemEmulator.cpin,
    "+CSQ": ModemEmulator.csq,
    "+COPS": ModemEmulator.cops,
    "+CFUN": ModemEmulator.cfun,
    "+CSCS": ModemEmulator.cscs,
    "+CSMS": ModemEmulator.csms,
    "+IFC": ModemEmulator.ifc,
    "+CSCA": ModemEmulator.csca,
    "+CSMP": ModemEmulator.csmp,
    "+CNMI": ModemEmulator.cnmi,
    "+CPMS": ModemEmulator.cpms,
    "+CNMA": ModemEmulator.cnma,
    "+CMGR": ModemEmulator.cmgr,
    "+CMGL": ModemEmulator.cmgl,
    "+CMGD": ModemEmulator.cmgd,
    "+CMGS": ModemEmulator.cmgs,
    "+CMGW": ModemEmulator.cmgw,
    "+CMSS": ModemEmulator.cmss,
}
