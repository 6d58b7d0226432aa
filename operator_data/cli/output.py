"""How `pintar` sub-commands speak: JSON on stdout; on bad input a clear message, exit 2.

Listings and reports also speak `--format table` (for people: `rich`, times in WIB with
their offset) and `--format csv` (for spreadsheets: cells that a spreadsheet would run as
a formula are neutralised); JSON stays the default because scripts read it. Long jobs
show a progress bar on stderr, and only when stderr is a terminal.

This module is imported by every command, the light codec ones too: `rich` and `csv` are
imported where they are used, not here.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta, timezone
from enum import StrEnum
from typing import IO, Annotated, Any, NoReturn

import typer

from operator_data import csv_cells

EXIT_BAD_INPUT = 2

# Western Indonesia Time has no daylight saving: a fixed offset is exact. The same zone as
# the web app's (operator_data/api/present.py), which this module must not import: that
# pulls in the web stack.
WIB = timezone(timedelta(hours=7), "WIB")


class Format(StrEnum):
    JSON = "json"
    TABLE = "table"
    CSV = "csv"


FormatOption = Annotated[
    str, typer.Option("--format", help="json (the default, for scripts), table or csv.")
]


def emit(document: Any) -> None:
    """Print one JSON document on stdout."""
    sys.stdout.write(
        json.dumps(document, ensure_ascii=False, indent=2, sort_keys=False, default=_json_value)
        + "\n"
    )


def fail(message: str) -> NoReturn:
    """Report bad input on stderr and leave with exit status 2."""
    sys.stderr.write(f"error: {message}\n")
    raise typer.Exit(code=EXIT_BAD_INPUT)


def parse_format(value: str) -> Format:
    """The `--format` value, or exit 2 naming the ones there are."""
    try:
        return Format(value.lower())
    except ValueError:
        fail(f"--format {value!r}: expected one of {', '.join(f.value for f in Format)}")


def _json_value(value: Any) -> Any:
    """JSON (and CSV) show instants as ISO 8601 with their offset, as stored (UTC)."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def wib_text(moment: datetime) -> str:
    """An instant for people: WIB wall-clock time with the offset said, e.g.
    `2026-03-02 14:05:00 +07:00`. A naive value is taken as UTC, as the web app does."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(WIB).strftime("%Y-%m-%d %H:%M:%S +07:00")


def neutralise(cell: str) -> str:
    """A CSV cell a spreadsheet will show, not run (operator_data/csv_cells.py: a leading
    apostrophe before `=`, `+`, `-`, `@`, tab or CR; a number such as `-5` left alone)."""
    return str(csv_cells.neutralise(cell))


def _csv_cell(value: Any) -> str | int | float:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple | dict):
        return neutralise(json.dumps(value, ensure_ascii=False, default=_json_value))
    return neutralise(str(value))


def _table_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return wib_text(value)
    if isinstance(value, list | tuple | dict):
        return json.dumps(value, ensure_ascii=False, default=_json_value)
    return str(value)


def write_csv(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], out: IO[str]) -> None:
    """A header line, then one line per row (missing keys are empty cells)."""
    import csv

    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_csv_cell(row.get(name)) for name in columns])


def write_table(
    rows: Sequence[Mapping[str, Any]], columns: Sequence[str], *, title: str | None = None
) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table()
    for name in columns:
        values = [row.get(name) for row in rows if row.get(name) is not None]
        numeric = bool(values) and all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in values
        )
        table.add_column(name, overflow="fold", justify="right" if numeric else "left")
    for row in rows:
        table.add_row(*(_table_cell(row.get(name)) for name in columns))
    if not rows:
        table.caption = "(none)"
    console = Console(highlight=False)
    if title is not None:
        # Above the table, not its `title`: that one wraps at the width of a narrow table.
        console.print(title, style="bold", markup=False)
    console.print(table)


def emit_rows(
    rows: Sequence[Mapping[str, Any]],
    format_: Format,
    *,
    columns: Sequence[str] | None = None,
    document: Any = None,
    title: str | None = None,
) -> None:
    """Print a listing in the format asked for.

    JSON prints `document` when given (a report's full structure: scripts depend on its
    shape), else the rows. Table and CSV print the rows, with `columns` (default: the keys
    of the first row) in that order.
    """
    if format_ is Format.JSON:
        emit(list(rows) if document is None else document)
        return
    names = list(columns) if columns is not None else list(rows[0]) if rows else []
    if format_ is Format.CSV:
        write_csv(rows, names, sys.stdout)
    else:
        write_table(rows, names, title=title)


Advance = Callable[[int], None]  # the number of items done so far


def progress_shown() -> bool:
    """Whether `progress` draws anything (a job may skip counting its total if not)."""
    return sys.stderr.isatty()


@contextmanager
def progress(description: str, total: int | None = None) -> Iterator[Advance]:
    """A progress bar for a long job, on stderr and only when stderr is a terminal: stdout
    keeps its JSON or CSV, and a pipe or a log file gets nothing extra. `total=None` (not
    known) shows a spinner with the count."""
    if not progress_shown():
        yield lambda done: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    columns: tuple[ProgressColumn, ...]
    if total is not None:
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    else:
        columns = (SpinnerColumn(), TextColumn("{task.description}"))
    with Progress(
        *columns, TimeElapsedColumn(), console=Console(stderr=True), transient=True
    ) as bar:
        task = bar.add_task(description, total=total)
        if total is not None:
            yield lambda done: bar.update(task, completed=done)
        else:
            yield lambda done: bar.update(task, description=f"{description}: {done}")


class LineCounter:
    """A text stream that reports the lines read or written through it to `advance`: the
    progress of a job that reads or writes a file but reports nothing itself."""

    def __init__(self, stream: IO[str], advance: Advance) -> None:
        self._stream = stream
        self._advance = advance
        self.lines = 0

    def __iter__(self) -> Iterator[str]:
        for line in self._stream:
            self.lines += 1
            if self.lines % 100 == 0:
                self._advance(self.lines)
            yield line
        self._advance(self.lines)

    def write(self, text: str) -> int:
        written = self._stream.write(text)
        before, self.lines = self.lines, self.lines + text.count("\n")
        if before // 100 != self.lines // 100:  # a redraw per 100 lines is plenty
            self._advance(self.lines)
        return written
