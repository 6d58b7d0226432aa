"""Reads a dialect file (TOML or JSON) an operator can edit into a typed `Dialect`.

The shipped `pln-default.toml` is such a file. Every fault names the file and the key
(`layout[3].fields[2].width`), so an operator can find it; a file that would loosen what
money and tokens depend on is refused here, not discovered in a purchase.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from p2apst_adapter.dialect.fields import FieldSpec, Kind, LengthType
from p2apst_adapter.dialect.private_data import Layout, SubField, SubKind
from p2apst_adapter.dialect.table import Dialect

DEFAULT_FILE_NAME = "pln-default.toml"
_MTI = re.compile(r"[0-9]{4}")
_NAME = re.compile(r"[a-z][a-z0-9_]*")
_TOP = frozenset({"name", "description", "field", "subfield", "layout", "bit48"})
_LENGTHS = {"fixed": LengthType.FIXED, "llvar": LengthType.LLVAR, "lllvar": LengthType.LLLVAR}
_MAX_LEN = {LengthType.FIXED: 999, LengthType.LLVAR: 99, LengthType.LLLVAR: 999}

_D, _N, _M = SubKind.DIGITS, SubKind.NUMBER, SubKind.MONEY
_MONEY_48 = {n: _M for n in ("admin_fee",)}
_PURCHASE_48 = {
    n: None for n in ("switcher_id", "meter_number", "customer_id", "flag", "pln_reference")
}
#: Layouts the adapter reads, the sub-fields it takes from each and, where the value feeds
#: money or a token, the kind it must keep whatever the file says (None: any kind).
REQUIRED: Mapping[str, Mapping[str, SubKind | None]] = {
    "amount": {"currency": _D, "amount": _M},
    "inquiry request": {
        "switcher_id": None,
        "meter_number": None,
        "customer_id": None,
        "flag": None,
    },
    "inquiry response": {
        **_PURCHASE_48,
        "switcher_reference": None,
        "customer_name": None,
        "tariff": None,
        "power_va": _N,
        **_MONEY_48,
    },
    "purchase request": {
        **_PURCHASE_48,
        "switcher_reference": None,
        "customer_name": None,
        "tariff": None,
        "power_va": _N,
        "buying_option": None,
        **_MONEY_48,
    },
    "purchase response": {
        **_PURCHASE_48,
        "switcher_reference": None,
        "vending_receipt": None,
        "customer_name": None,
        "token": _D,
        "kwh": _M,
        "power_purchase": _M,
        "admin_fee": _M,
        "stamp_duty": _M,
        "vat": _M,
        "ppj": _M,
        "instalment": _M,
    },
    "token report": {
        "switcher_id": None,
        "meter_number": None,
        "report_id": None,
        "switcher_reference": None,
        "token": _D,
        "accepted": None,
        "reason": None,
        "event_time": None,
        "credit_kwh": _M,
    },
    "original data": {
        "original_mti": None,
        "original_stan": None,
        "original_datetime": None,
        "original_bank_code": None,
    },
    "private data 2": {},
}
#: Informational layouts, the only ones that may be `lenient`.
MAY_BE_LENIENT = frozenset({"private data 2"})
#: Byte-to-text encodings a field may use (`latin-1` takes any byte).
ENCODINGS = ("ascii", "latin-1", "cp1252", "utf-8")
#: Fields whose content money or matching depends on: they stay digits-only.
NUMERIC_BITS = frozenset({4, 11, 39})


class DialectFileError(ValueError):
    """A dialect file that cannot be used; says which file and which key."""

    def __init__(self, source: str, key: str, problem: str) -> None:
        super().__init__(f"{source}: {key}: {problem}" if key else f"{source}: {problem}")
        self.source = source
        self.key = key
        self.problem = problem


class _Reader:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, key: str, problem: str) -> DialectFileError:
        return DialectFileError(self.source, key, problem)

    def table(self, value: object, key: str) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise self.fail(key, f"expected a table, got {type(value).__name__}")
        return value

    def only(self, table: Mapping[str, Any], allowed: set[str], key: str) -> None:
        unknown = sorted(set(table) - allowed)
        if unknown:
            raise self.fail(
                key, f"unknown key {unknown[0]!r} (known: {', '.join(sorted(allowed))})"
            )

    def integer(self, table: Mapping[str, Any], name: str, key: str, low: int, high: int) -> int:
        value = table.get(name)
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise self.fail(f"{key}.{name}", f"needs a whole number {low}..{high}, got {value!r}")
        return value

    def text(
        self, table: Mapping[str, Any], name: str, key: str, default: str | None = None
    ) -> str:
        value = table.get(name, default)
        if not isinstance(value, str) or not value:
            raise self.fail(f"{key}.{name}", f"needs a non-empty string, got {value!r}")
        return value

    def choice(
        self, table: Mapping[str, Any], name: str, key: str, options: Mapping[str, Any]
    ) -> Any:
        value = table.get(name)
        if not isinstance(value, str) or value not in options:
            raise self.fail(f"{key}.{name}", f"must be one of {', '.join(options)}, got {value!r}")
        return options[value]


def _field(reader: _Reader, raw: object, key: str) -> FieldSpec:
    row = reader.table(raw, key)
    reader.only(row, {"bit", "kind", "length", "max_len", "desc", "encoding"}, key)
    bit = reader.integer(row, "bit", key, 2, 128)
    kind = reader.choice(row, "kind", key, {k.value: k for k in Kind})
    length = reader.choice(row, "length", key, _LENGTHS)
    max_len = reader.integer(row, "max_len", key, 1, _MAX_LEN[length])
    encoding = reader.text(row, "encoding", key, "ascii")
    if encoding not in ENCODINGS:
        raise reader.fail(
            f"{key}.encoding", f"unknown encoding {encoding!r} (one of {', '.join(ENCODINGS)})"
        )
    return FieldSpec(bit, kind, length, max_len, reader.text(row, "desc", key, ""), encoding)


def _subfield(reader: _Reader, name: str, raw: object, key: str) -> SubField:
    row = reader.table(raw, key)
    reader.only(row, {"name", "width", "kind", "minor"}, key)
    if not _NAME.fullmatch(name):
        raise reader.fail(key, f"sub-field name {name!r} must be lower_case_with_digits")
    kind = reader.choice(row, "kind", key, {k.value: k for k in SubKind})
    width = reader.integer(row, "width", key, 2 if kind is SubKind.MONEY else 1, 999)
    minor = 0
    if "minor" in row:
        if kind is not SubKind.MONEY:
            raise reader.fail(f"{key}.minor", "only money sub-fields have a minor unit")
        minor = reader.integer(row, "minor", key, 0, 9)
    return SubField(name, width, kind, minor)


def _layout(
    reader: _Reader,
    raw: object,
    key: str,
    shared: Mapping[str, SubField],
    earlier: Mapping[str, Layout],
) -> Layout:
    row = reader.table(raw, key)
    reader.only(row, {"name", "bit", "base", "fields", "repeat", "count", "lenient"}, key)
    name = reader.text(row, "name", key)
    if name in earlier:
        raise reader.fail(f"{key}.name", f"layout {name!r} is defined twice")
    bit = reader.integer(row, "bit", key, 2, 128)
    subs: list[SubField] = []
    if "base" in row:
        base = reader.text(row, "base", key)
        if base not in earlier:
            raise reader.fail(f"{key}.base", f"no earlier layout named {base!r}")
        subs.extend(earlier[base].fields)
    entries = row.get("fields", [])
    if not isinstance(entries, list):
        raise reader.fail(f"{key}.fields", "needs a list")
    for index, entry in enumerate(entries):
        where = f"{key}.fields[{index}]"
        if isinstance(entry, str):
            if entry not in shared:
                raise reader.fail(where, f"no [subfield] named {entry!r}")
            subs.append(shared[entry])
        else:
            table = reader.table(entry, where)
            subs.append(_subfield(reader, reader.text(table, "name", where), table, where))
    names = [sub.name for sub in subs]
    if len(set(names)) != len(names):
        twice = next(n for n in names if names.count(n) > 1)
        raise reader.fail(f"{key}.fields", f"sub-field {twice!r} appears twice")
    repeat = None
    if "repeat" in row:
        table = reader.table(row["repeat"], f"{key}.repeat")
        repeat = _subfield(
            reader, reader.text(table, "name", f"{key}.repeat"), table, f"{key}.repeat"
        )
    count = None
    if "count" in row:
        count = reader.text(row, "count", key)
        if repeat is None:
            raise reader.fail(f"{key}.count", "a count without a repeat")
        if not any(sub.name == count and sub.kind is SubKind.NUMBER for sub in subs):
            raise reader.fail(f"{key}.count", f"{count!r} is not a number sub-field of {name}")
    lenient = row.get("lenient", False)
    if not isinstance(lenient, bool):
        raise reader.fail(f"{key}.lenient", f"needs true or false, got {lenient!r}")
    if not subs and repeat is None:
        raise reader.fail(f"{key}.fields", "a layout needs at least one sub-field")
    return Layout(name, bit, tuple(subs), repeat, count, lenient)


def _check_required(
    reader: _Reader, layouts: Mapping[str, Layout], keys: Mapping[str, str]
) -> None:
    for name, wanted in REQUIRED.items():
        if name not in layouts:
            raise reader.fail("layout", f"the adapter needs a layout named {name!r}")
        layout = layouts[name]
        kinds = {sub.name: sub for sub in layout.fields}
        for sub_name, kind in wanted.items():
            if sub_name not in kinds:
                raise reader.fail(keys[name], f"{name} needs a sub-field {sub_name!r}")
            if kind is not None and kinds[sub_name].kind is not kind:
                raise reader.fail(
                    keys[name],
                    f"{name}.{sub_name} must stay {kind.value}: money and tokens are strict",
                )
    for name, layout in layouts.items():
        if layout.lenient and name not in MAY_BE_LENIENT:
            raise reader.fail(
                f"{keys[name]}.lenient",
                f"{name} carries money or tokens; only {', '.join(sorted(MAY_BE_LENIENT))} "
                "may be lenient",
            )


def parse_dialect(document: Mapping[str, Any], source: str) -> Dialect:
    """A `Dialect` from a parsed file; raises `DialectFileError` naming the faulty key."""
    reader = _Reader(source)
    top = reader.table(document, "")
    reader.only(top, set(_TOP), "(top level)")
    name = reader.text(top, "name", "(top level)")
    rows = top.get("field", [])
    if not isinstance(rows, list):
        raise reader.fail("field", "needs a list of [[field]] tables")
    fields = [_field(reader, row, f"field[{index}]") for index, row in enumerate(rows)]
    bits = [spec.bit for spec in fields]
    if len(set(bits)) != len(bits):
        raise reader.fail("field", f"bit {next(b for b in bits if bits.count(b) > 1)} twice")
    by_bit = {spec.bit: spec for spec in fields}
    for bit in sorted(NUMERIC_BITS):
        if bit not in by_bit or by_bit[bit].kind is not Kind.NUMERIC:
            raise reader.fail(
                "field", f"bit {bit} must be listed with kind n (money depends on it)"
            )
    if 48 not in by_bit or by_bit[48].length is LengthType.FIXED:
        raise reader.fail("field", "bit 48 must be listed as llvar or lllvar")
    shared_table = reader.table(top.get("subfield", {}), "subfield")
    shared = {
        sub_name: _subfield(reader, sub_name, raw, f"subfield.{sub_name}")
        for sub_name, raw in shared_table.items()
    }
    raw_layouts = top.get("layout", [])
    if not isinstance(raw_layouts, list):
        raise reader.fail("layout", "needs a list of [[layout]] tables")
    layouts: dict[str, Layout] = {}
    keys: dict[str, str] = {}
    for index, raw in enumerate(raw_layouts):
        layout = _layout(reader, raw, f"layout[{index}]", shared, layouts)
        layouts[layout.name] = layout
        keys[layout.name] = f"layout[{index}]"
    _check_required(reader, layouts, keys)
    bit48 = _bit48(reader, top.get("bit48", {}), layouts)
    return Dialect(name, tuple(fields), tuple(layouts.values()), bit48, source)


def _bit48(
    reader: _Reader, raw: object, layouts: Mapping[str, Layout]
) -> tuple[tuple[str, tuple[str, ...]], ...]:
    table = reader.table(raw, "bit48")
    entries: list[tuple[str, tuple[str, ...]]] = []
    for mti, names in table.items():
        key = f"bit48.{mti}"
        if not _MTI.fullmatch(str(mti)):
            raise reader.fail(key, "keys are 4-digit message types")
        if not isinstance(names, list) or not names:
            raise reader.fail(key, "needs a non-empty list of layout names")
        for layout_name in names:
            layout = layouts.get(layout_name) if isinstance(layout_name, str) else None
            if layout is None or layout.bit != 48:
                raise reader.fail(key, f"{layout_name!r} is not a bit 48 layout of this file")
        entries.append((str(mti), tuple(names)))
    return tuple(entries)


def load_dialect(path: Path) -> Dialect:
    """Reads a `.toml` or `.json` dialect file."""
    source = str(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise DialectFileError(source, "", f"cannot read it: {error.strerror or error}") from None
    try:
        if path.suffix.lower() == ".json":
            document = json.loads(data.decode("utf-8"))
        elif path.suffix.lower() == ".toml":
            document = tomllib.loads(data.decode("utf-8"))
        else:
            raise DialectFileError(source, "", "a dialect file ends in .toml or .json")
    except (UnicodeDecodeError, tomllib.TOMLDecodeError, json.JSONDecodeError) as error:
        raise DialectFileError(source, "", f"not valid {path.suffix[1:]}: {error}") from None
    return parse_dialect(document, source)


def default_dialect_text() -> str:
    """The shipped default file, for operators to copy and edit."""
    return resources.files("p2apst_adapter.dialect").joinpath(DEFAULT_FILE_NAME).read_text("utf-8")


def load_default() -> Dialect:
    document = tomllib.loads(default_dialect_text())
    return parse_dialect(document, f"p2apst_adapter/dialect/{DEFAULT_FILE_NAME}")
