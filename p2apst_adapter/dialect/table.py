"""A whole dialect: the field table, the sub-field layouts and which bit 48 layout a message
type carries. Built from a dialect file by `loader`; frozen, so codecs can cache on it."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from iso8583.specs import default_ascii

from p2apst_adapter.dialect.errors import IsoError
from p2apst_adapter.dialect.fields import FieldSpec, Kind
from p2apst_adapter.dialect.private_data import Layout


@dataclass(frozen=True, slots=True)
class Dialect:
    """pyiso8583's ASCII defaults with `fields` laid over them, plus the layouts.

    `bit48` maps an MTI to the names of its bit 48 layouts, most specific first: an error
    response carries the request's bit 48 back, so a response also accepts the request's
    layout (chosen by length).
    """

    name: str
    fields: tuple[FieldSpec, ...]
    layouts: tuple[Layout, ...]
    bit48: tuple[tuple[str, tuple[str, ...]], ...]
    source: str = ""  # the file it came from, for error messages and logs

    def field(self, bit: int) -> FieldSpec | None:
        for spec in self.fields:
            if spec.bit == bit:
                return spec
        return None

    def numeric_bits(self) -> frozenset[int]:
        return frozenset(spec.bit for spec in self.fields if spec.kind is Kind.NUMERIC)

    def layout(self, name: str) -> Layout:
        for layout in self.layouts:
            if layout.name == name:
                return layout
        raise KeyError(f"dialect {self.name} has no layout {name!r}")

    def bit48_layouts(self) -> Mapping[str, tuple[Layout, ...]]:
        return {mti: tuple(self.layout(name) for name in names) for mti, names in self.bit48}

    def bit48_layout(self, mti: str, text: str) -> Layout:
        """The layout of a bit 48 value in a message of type `mti`."""
        candidates = next((names for key, names in self.bit48 if key == mti), None)
        if not candidates:
            raise IsoError(f"message type {mti} has no bit 48 layout", field="48")
        layouts = [self.layout(name) for name in candidates]
        for layout in layouts:
            if len(text) == layout.width:
                return layout
        return layouts[0]

    def pyiso8583_spec(self) -> dict[str, dict[str, Any]]:
        spec: dict[str, dict[str, Any]] = copy.deepcopy(default_ascii)
        for row in self.fields:
            spec[str(row.bit)] = {
                "data_enc": row.encoding,
                "len_enc": "ascii",
                "len_type": int(row.length),
                "max_len": row.max_len,
                "desc": row.desc,
            }
        return spec
