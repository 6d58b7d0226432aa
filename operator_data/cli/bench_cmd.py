"""`pintar bench`: runs the benchmarks of a source checkout (`bench/`, next to the packages;
it is not part of the installed distribution) and rewrites docs/benchmarks.{md,json}."""

from __future__ import annotations

import dataclasses
import importlib
import sys
from pathlib import Path
from types import ModuleType
from typing import Annotated, Any

import typer

import operator_data
from operator_data.cli.output import FormatOption, emit, emit_rows, fail, parse_format

app = typer.Typer(help="Benchmarks (needs a source checkout with bench/).", no_args_is_help=True)


def find_checkout(start: Path | None = None) -> Path | None:
    """The repository root: above the working directory, else above this package."""
    candidates = [start or Path.cwd(), Path(operator_data.__file__).resolve().parent]
    for candidate in candidates:
        for folder in (candidate, *candidate.parents):
            if (folder / "bench" / "run.py").is_file() and (folder / "pyproject.toml").is_file():
                return folder
    return None


def _runner() -> ModuleType:
    root = find_checkout()
    if root is None:
        fail("no bench/ found: run from a source checkout (or use `python -m bench.run`)")
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    return importlib.import_module("bench.run")


def _sizes(values: list[str]) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for value in values:
        name, _, number = value.partition("=")
        if not name or not number.isdigit():
            fail(f"--size wants NAME=N, got {value!r}")
        sizes[name] = int(number)
    return sizes


@app.command("list")
def list_benchmarks(format_: FormatOption = "json") -> None:
    """The benchmarks, with their default and smoke sizes."""
    shape = parse_format(format_)
    runner = _runner()
    emit_rows(
        [
            {
                "name": b.name,
                "title": b.title,
                "default_size": b.default_size,
                "smoke_size": b.smoke_size,
            }
            for b in runner.benchmarks().values()
        ],
        shape,
        title="Benchmarks",
    )


@app.command("run")
def run(
    names: Annotated[list[str] | None, typer.Argument(help="all (default) or names")] = None,
    size: Annotated[
        list[str] | None, typer.Option("--size", help="NAME=N, the size of one benchmark")
    ] = None,
    smoke: Annotated[bool, typer.Option("--smoke", help="Tiny sizes: proves it runs.")] = False,
    write: Annotated[
        bool, typer.Option("--write/--no-write", help="Rewrite docs/benchmarks.{md,json}.")
    ] = True,
) -> None:
    """Run benchmarks; print their figures as JSON."""
    runner = _runner()
    try:
        sections = runner.run(names or ["all"], sizes=_sizes(size or []), smoke=smoke, write=write)
    except ValueError as error:
        fail(str(error))
    document: list[dict[str, Any]] = [dataclasses.asdict(section) for section in sections]
    emit(document)
