"""Parsers for the information lines of the commands the driver uses (27.005 / 27.007).

Each takes the text after the `+XXX:` prefix (as `Response.prefixed` returns it) and raises
ResponseError, naming the command and the field, when the modem answered something else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import IntEnum

from gateway.at.errors import AtError


class ResponseError(AtError):
    """An information line did not have the documented shape."""


class RegistrationStatus(IntEnum):
    NOT_SEARCHING = 0
    HOME = 1
    SEARCHING = 2
    DENIED = 3
    UNKNOWN = 4
    ROAMING = 5

    @property
    def registered(self) -> bool:
        return self in (RegistrationStatus.HOME, RegistrationStatus.ROAMING)


@dataclass(frozen=True, slots=True)
class Signal:
    rssi: int  # 0-31, 99 unknown
    ber: int

    @property
    def dbm(self) -> int | None:
        return None if self.rssi == 99 else -113 + 2 * self.rssi


@dataclass(frozen=True, slots=True)
class StorageStatus:
    storage: str | None
    used: int
    total: int

    @property
    def full(self) -> bool:
        return self.total > 0 and self.used >= self.total


@dataclass(frozen=True, slots=True)
class ListedPdu:
    """One message from `+CMGL:` or `+CMGR:` (PDU mode)."""

    index: int | None
    stat: int
    length: int
    pdu: str


def _digits(text: str) -> bool:
    # str.isdigit takes "²" and other non-ASCII digits that int() refuses with ValueError.
    return text.isascii() and text.isdigit()


def _ints(text: str, command: str, names: tuple[str, ...]) -> tuple[int, ...]:
    parts = [p.strip() for p in text.split(",")]
    if len(parts) < len(names):
        raise ResponseError(f"{command}: expected {', '.join(names)} in {text!r}")
    values = []
    for name, part in zip(names, parts, strict=False):
        if not _digits(part):
            raise ResponseError(f"{command}: field {name} is {part!r}, not a number, in {text!r}")
        values.append(int(part))
    return tuple(values)


def parse_creg(text: str) -> RegistrationStatus:
    """`+CREG: <n>,<stat>[,<lac>,<ci>]` (the answer to AT+CREG?)."""
    _, stat = _ints(text, "+CREG", ("n", "stat"))
    try:
        return RegistrationStatus(stat)
    except ValueError:
        return RegistrationStatus.UNKNOWN


def parse_csq(text: str) -> Signal:
    rssi, ber = _ints(text, "+CSQ", ("rssi", "ber"))
    return Signal(rssi, ber)


def parse_cmgs(text: str) -> int:
    """`+CMGS: <mr>[,<scts>]`: the message reference a status report will carry."""
    (mr,) = _ints(text, "+CMGS", ("mr",))
    if mr > 255:
        raise ResponseError(f"+CMGS: message reference {mr} is not 0-255")
    return mr


def parse_cmgw(text: str) -> int:
    """`+CMGW: <index>`: where AT+CMGW stored the message."""
    (index,) = _ints(text, "+CMGW", ("index",))
    return index


def parse_cmss(text: str) -> int:
    """`+CMSS: <mr>[,<scts>]` (some modems answer AT+CMSS with `+CMGS:` in PDU mode)."""
    (mr,) = _ints(text, "+CMSS", ("mr",))
    if mr > 255:
        raise ResponseError(f"+CMSS: message reference {mr} is not 0-255")
    return mr


_QUOTED = re.compile(r'"([^"]*)"')


def parse_cpms_query(text: str) -> StorageStatus:
    """`+CPMS: "SM",<used>,<total>,...`: the status of the first (read/delete) memory."""
    parts = [p.strip() for p in text.split(",")]
    if len(parts) < 3:
        raise ResponseError(f"+CPMS: expected mem1,used1,total1 in {text!r}")
    storage = parts[0].strip('"')
    if not parts[1] and not parts[2]:
        # `+CPMS: ,,,,,,,,` (a Nokia N79, recorded): no readable storage; the sweep still lists.
        return StorageStatus(storage, 0, 0)
    used, total = _ints(",".join(parts[1:3]), "+CPMS", ("used1", "total1"))
    return StorageStatus(storage, used, total)


def parse_cpms_set(text: str, storage: str) -> StorageStatus:
    """`+CPMS: <used1>,<total1>,...` (the answer to AT+CPMS=<mem1>,...)."""
    used, total = _ints(text, "+CPMS", ("used1", "total1"))
    return StorageStatus(storage, used, total)


def parse_cpms_test(text: str) -> list[set[str]]:
    """`+CPMS: ("SM","ME"),("SM","ME"),("SM")`: the memories allowed for each position."""
    groups = re.findall(r"\(([^)]*)\)", text)
    if not groups:
        raise ResponseError(f"+CPMS: no (memory list) groups in {text!r}")
    return [set(_QUOTED.findall(group)) for group in groups]


def _range_set(group: str) -> set[int]:
    values: set[int] = set()
    for item in group.split(","):
        item = item.strip()
        low, sep, high = item.partition("-")
        if not low.isdigit() or (sep and not high.isdigit()):
            raise ResponseError(f"+CNMI: {item!r} is not a number or range")
        values.update(range(int(low), int(high) + 1) if sep else {int(low)})
    return values


def parse_cnmi_test(text: str) -> list[set[int]]:
    """`+CNMI: (0-2),(0-3),(0,2),(0-2),(0,1)`: the values allowed for each parameter."""
    groups = re.findall(r"\(([^)]*)\)", text)
    if not groups:
        raise ResponseError(f"+CNMI: no (value list) groups in {text!r}")
    return [_range_set(group) for group in groups]


def cnmi_supported(variant: str, allowed: list[set[int]]) -> bool:
    values = [int(v) for v in variant.split(",")]
    return len(values) <= len(allowed) and all(
        v in a for v, a in zip(values, allowed, strict=False)
    )


def parse_cpin(text: str) -> str:
    return text.strip().upper()


def parse_csms(text: str) -> int:
    """`+CSMS: <service>,<mt>,<mo>,<bm>`: service 1 means +CMT/+CDS need AT+CNMA."""
    (service,) = _ints(text, "+CSMS", ("service",))
    return service


def parse_index_urc(text: str, name: str) -> tuple[str, int]:
    """`+CMTI: "SM",<index>` / `+CDSI: "SM",<index>`."""
    storage, sep, index = text.rpartition(",")
    index = index.strip()
    if not sep or not _digits(index):
        raise ResponseError(f"{name}: expected <mem>,<index> in {text!r}")
    return storage.strip().strip('"'), int(index)


def _header(text: str, command: str, with_index: bool) -> tuple[int | None, int, int]:
    # +CMGL: <index>,<stat>,[<alpha>],<length>  /  +CMGR: <stat>,[<alpha>],<length>
    parts = [p.strip() for p in text.split(",")]
    minimum = 3 if with_index else 2
    if len(parts) < minimum:
        raise ResponseError(f"{command}: too few fields in {text!r}")
    # A ZTE answers `+CMGR: ,,27` (recorded): no stat; read as unread, as other drivers do.
    fields = {
        "stat": parts[1 if with_index else 0] or ("0" if not with_index else ""),
        "length": parts[-1],
    }
    if with_index:
        fields["index"] = parts[0]
    for name, value in fields.items():
        if not _digits(value):
            raise ResponseError(f"{command}: field {name} is {value!r}, not a number")
    index = int(fields["index"]) if with_index else None
    return index, int(fields["stat"]), int(fields["length"])


def parse_pdu_listing(lines: tuple[str, ...], prefix: str) -> list[ListedPdu]:
    """Pairs of `+CMGL:`/`+CMGR:` header and PDU line, in order."""
    found: list[ListedPdu] = []
    with_index = prefix == "+CMGL:"
    position = 0
    while position < len(lines):
        line = lines[position]
        position += 1
        if not line.startswith(prefix):
            continue
        index, stat, length = _header(line[len(prefix) :], prefix.rstrip(":"), with_index)
        if position >= len(lines) or lines[position].startswith(prefix):
            raise ResponseError(f"{prefix} {index}: header without a PDU line")
        found.append(ListedPdu(index, stat, length, lines[position]))
        position += 1
    return found


def parse_cops(text: str) -> str | None:
    """`+COPS: <mode>[,<format>,"<oper>"[,<AcT>]]` (the answer to AT+COPS?): the operator's
    name as the modem gives it; None when the modem is registered nowhere (mode alone)."""
    parts = [p.strip() for p in text.split(",")]
    if not parts[0].isdigit():
        raise ResponseError(f"+COPS: field mode is {parts[0]!r}, not a number, in {text!r}")
    if len(parts) == 1:
        return None
    if len(parts) < 3 or not parts[1].isdigit():
        raise ResponseError(f"+COPS: expected mode,format,oper in {text!r}")
    name = parts[2]
    if len(name) < 2 or not (name.startswith('"') and name.endswith('"')):
        raise ResponseError(f"+COPS: operator {name!r} is not quoted in {text!r}")
    return name[1:-1].strip() or None


_IMEI = re.compile(r"\d{14,16}")


def parse_cgsn(lines: tuple[str, ...]) -> str:
    """The answer to AT+CGSN: one line of 15 digits (some modems add `+CGSN: ` or quotes)."""
    for line in lines:
        value = line.removeprefix("+CGSN:").strip().strip('"')
        if _IMEI.fullmatch(value):
            return value
    raise ResponseError(f"AT+CGSN: no IMEI (14-16 digits) in {list(lines)!r}")
