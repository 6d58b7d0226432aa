"""AP2T CSV text cells that a spreadsheet will not run (formula injection).

The same rule as `operator_data/csv_cells.py`, repeated here because the adapter must not
depend on the hub package: a text cell beginning with = + - @ (or a tab or carriage
return), possibly after quotes, gets one leading single quote; `restore` takes it off
again, so a reader that applies it gets exactly what the hub meant. Only the AP2T columns
that carry free text go through it (see `records.COLUMNS`, `Column.text`): the numeric and
time columns are formatted by this package from typed values and AP2T parses them as
numbers, so `-1.500` (a register that went negative) must stay exactly `-1.500`.
"""

from __future__ import annotations

TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def _risky(text: str) -> bool:
    return text.lstrip("'").startswith(TRIGGERS)


def neutralise(text: str) -> str:
    """`text` as it may go into an AP2T text cell."""
    return "'" + text if _risky(text) else text


def restore(cell: str) -> str:
    """The text `neutralise` was given, from what it wrote."""
    if cell.startswith("'") and _risky(cell[1:]):
        return cell[1:]
    return cell
