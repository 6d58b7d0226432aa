"""`python -m bench.run [all|NAME ...] [--size NAME=N ...] [--smoke] [--no-write]`.

Runs the named benchmarks (all by default) and rewrites docs/benchmarks.md and
docs/benchmarks.json; sections not run this time keep their last figures."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from bench import (
    ap2t_export,
    gammu_compare,
    hub_pipeline,
    hub_workers,
    p2apst_throughput,
    pool_efficiency,
    spool_batch,
    token_e2e,
)
from bench.report import REPO, Machine, Section, merge, render_json, render_markdown

MODULES: tuple[ModuleType, ...] = (
    pool_efficiency,
    gammu_compare,
    p2apst_throughput,
    ap2t_export,
    hub_pipeline,
    hub_workers,
    spool_batch,
    token_e2e,
)
DOCS = REPO / "docs"


@dataclass(frozen=True, slots=True)
class Benchmark:
    name: str
    title: str
    default_size: int
    smoke_size: int
    run: Callable[[int], Section]


def benchmarks() -> dict[str, Benchmark]:
    return {
        m.NAME: Benchmark(m.NAME, m.TITLE, m.DEFAULT_SIZE, m.SMOKE_SIZE, m.run) for m in MODULES
    }


def run(
    names: Sequence[str] = ("all",),
    *,
    sizes: dict[str, int] | None = None,
    smoke: bool = False,
    write: bool = True,
    docs: Path = DOCS,
    log: Callable[[str], None] = lambda line: print(line, file=sys.stderr),
) -> list[Section]:
    """Runs benchmarks by name ("all" = every one) and, with `write`, rewrites the docs."""
    known = benchmarks()
    chosen = list(known) if not names or "all" in names else list(dict.fromkeys(names))
    unknown = [name for name in chosen if name not in known]
    if unknown:
        raise ValueError(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(known)}")
    sizes = sizes or {}
    sections: list[Section] = []
    for name in chosen:
        bench = known[name]
        size = sizes.get(name, bench.smoke_size if smoke else bench.default_size)
        log(f"bench: {name} (size {size}) ...")
        load = os.getloadavg()[0]
        section = bench.run(size)
        section.notes.append(f"Load average (1 min) when this benchmark started: {load:.2f}.")
        log(f"bench: {name} done in {section.seconds:.0f} s")
        sections.append(section)
    if write:
        json_path = docs / "benchmarks.json"
        order = list(known)
        every = merge(json_path, sections)
        every.sort(key=lambda s: order.index(s.name) if s.name in order else len(order))
        machine = Machine.current()
        docs.mkdir(parents=True, exist_ok=True)
        (docs / "benchmarks.md").write_text(render_markdown(machine, every), encoding="utf-8")
        json_path.write_text(render_json(machine, every), encoding="utf-8")
        log(f"bench: wrote {docs / 'benchmarks.md'} and {json_path}")
    return sections


def _size(text: str) -> tuple[str, int]:
    name, _, value = text.partition("=")
    try:
        return name, int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--size wants NAME=N, got {text!r}") from None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("names", nargs="*", default=["all"], help="all, or benchmark names")
    parser.add_argument("--size", type=_size, action="append", default=[], metavar="NAME=N")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (proves it runs)")
    parser.add_argument("--no-write", action="store_true", help="leave docs/ untouched")
    args = parser.parse_args(argv)
    try:
        sections = run(args.names, sizes=dict(args.size), smoke=args.smoke, write=not args.no_write)
    except ValueError as error:
        parser.error(str(error))
    for section in sections:
        for row in section.rows:
            print(f"{section.name}: {row.measurement}: {row.value} {row.unit} [{row.verdict}]")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
